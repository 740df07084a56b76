#!/bin/sh
# Session 35 call Y3: `npx bench --e2e --size 1216x832` (new flag), one request end to end (8 steps, seed 42, synthetic
# weights) of both families at 1216x832 (3952 image tokens), with diffusers' stages at that size in the same call
# (bench/gpu/baseline_e2e.py --size; diffusers' src on PYTHONPATH, .gpu/E32/diffusers-src.tar.xz). Pipelines compiled on
# the CPU machine at this tree:
#   npx compile models/flux2/full.pipeline.json --size 1216x832 --out .gpu/Y3/flux2-dev (and qwen_image -> .gpu/Y3/qwen-image)
#   tar -cf - -C .gpu/Y3 DIR | xz -T2 -c > .gpu/Y3/pipe-MODEL.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/E32/diffusers-src.tar.xz, .gpu/Y3/pipe-flux2.tar.xz, .gpu/Y3/pipe-qwen_image.tar.xz
# The body is bench/gpu/e2e_pipelines.sh, which calls Y3 and Y10 share. As run, its timeout was 580 s and it printed the first 60 lines of bench-e2e.md.
set -u
sh bench/gpu/e2e_pipelines.sh .gpu/Y3 --size 1216x832
