#!/bin/sh
# Session 29 call S1 (issues 6, 7): the steps with the K block scales staged in shared memory (1adda8e, "new") against
# 568a4f4 ("old"), and with the policy {"attention": "int8-pv"} (s8 Q·Kᵀ and the integer P·V, at 1adda8e), Flux.2 at
# 1024x1024 with 512 text tokens and Qwen-Image at batch 2 with 32 text tokens: session 15's G1 (outputs against old, then
# the step alternating, two rounds), artifacts in .gpu/S29/art.tar.xz.
set -u
D=.gpu/S29 MODELS="flux qwen" VARIANTS="old new int8pv" ROUNDS=2 sh bench/gpu/calls/session15-G1.sh
