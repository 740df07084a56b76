#!/bin/sh
# Session 42, call E2 (GPU host): the steps with this session's attention kernels (fin: f2289bb, default policy; pv: f2289bb with
# {"attention": "int8-pv"}) beside the session's start (s0: 809632c, default): Flux.2 1024x1024 with 512 text tokens,
# Qwen-Image batch 2 with 32 text tokens (`npx compile bundled:flux2_dev --target h100 --size 1024x1024 --shape txt_tokens=512
# [--policy pv.json]`, `npx compile bundled:qwen_image --target h100 --batch 2 --text-length 32 [--policy pv.json]`, in
# .gpu/E42/art.tar.xz), session 15's G1: outputs against s0, then the steps alternating, three rounds.
set -u
D=.gpu/E42 MODELS="flux qwen" VARIANTS="s0 fin pv" ROUNDS=3 sh bench/gpu/calls/session15-G1.sh
