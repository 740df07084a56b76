#!/bin/sh
# Session 35 call Y10: `npx bench --e2e` at the default size, 1024x1024, both families, with diffusers' stages in the same call
# (bench/gpu/baseline_e2e.py; diffusers' src on PYTHONPATH, .gpu/E32/diffusers-src.tar.xz), at the session's final tree: the
# whole request after this session's changes (a network's modules in one activation memory, one step-memo budget, modules
# picked by size). Session 32's calls E1 / E2 are the same measurement before them. Pipelines compiled on the CPU machine:
#   npx compile models/flux2/full.pipeline.json --out .gpu/Y10/flux2-dev (and qwen_image -> .gpu/Y10/qwen-image)
#   tar -cf - -C .gpu/Y10 DIR | xz -T2 -c > .gpu/Y10/pipe-MODEL.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/E32/diffusers-src.tar.xz, .gpu/Y10/pipe-flux2.tar.xz, .gpu/Y10/pipe-qwen_image.tar.xz
# The body is bench/gpu/e2e_pipelines.sh, which calls Y3 and Y10 share. As run, its timeout was 480 s.
set -u
sh bench/gpu/e2e_pipelines.sh .gpu/Y10
