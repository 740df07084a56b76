#!/bin/sh
# Session 18 call B7: the models with FP8 P·V (policy {"attention": "fp8-pv"}, now two P arrays) against the default, in the
# power-capped step (issue 7). Artifacts compiled at the session's tree into .gpu/B7/art/{flux,qwen}-{def,pv}
# (`npx compile bundled:flux2_dev --target h100 --size 1024x1024 --shape txt_tokens=512 [--policy pv.json]`,
# `npx compile bundled:qwen_image --target h100 --batch 2 --text-length 32 [--policy pv.json]`), tarred as
# .gpu/B7/art.tar.xz; the runtime of `npx tsx runtime/gpu/pack.ts`. Session 15's G1 script, three rounds alternating.
D=.gpu/B7 MODELS="flux qwen" VARIANTS="def pv" ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session15-G1.sh
