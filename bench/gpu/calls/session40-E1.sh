#!/bin/sh
# Session 40, call E1 (GPU host): the steps with the policy {"attention": "int8-pv"} at 3906eaf ("inew": intMax, three-input
# maxima) beside the default ("def"): Flux.2 1024x1024 with 512 text tokens, Qwen-Image batch 2 with 32 text tokens
# (`npx compile bundled:flux2_dev --target h100 --size 1024x1024 --shape txt_tokens=512 [--policy pv.json]`,
# `npx compile bundled:qwen_image --target h100 --batch 2 --text-length 32 [--policy pv.json]`, in .gpu/E40/art.tar.xz),
# session 15's G1: outputs against def, then the steps alternating, two rounds.
set -u
D=.gpu/E40 MODELS="flux qwen" VARIANTS="def inew" ROUNDS=2 sh bench/gpu/calls/session15-G1.sh
