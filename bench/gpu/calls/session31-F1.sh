#!/bin/sh
# Session 31 call F1 (issue 7): where the tree stands on the step targets, session 27's F1 (`npx bench --no-baseline --iters
# 20`, two rounds) on artifacts compiled at 208bbd2 (the kernels as at session 30's end): Flux.2 [dev] 1024x1024 with 512
# text tokens, Qwen-Image batch 2 (CFG) with 32 text tokens, in .gpu/F31/art.tar.xz.
D=.gpu/F31 ROUNDS=2 sh bench/gpu/calls/session27-F1.sh
