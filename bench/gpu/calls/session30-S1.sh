#!/bin/sh
# Session 30 call S1 (issues 6, 7): the steps with the policy {"attention": "int8-pv"} at 803bcbb ("i30": the integer P·V's
# softmax on f16 pairs) and at 540ff73 ("i29"), beside the default at 803bcbb ("def"); Flux.2 at 1024x1024 with 512 text
# tokens and Qwen-Image at batch 2 with 32 text tokens: session 15's G1 (outputs against def, then the step alternating,
# two rounds), artifacts in .gpu/S30/art.tar.xz.
set -u
D=.gpu/S30 MODELS="flux qwen" VARIANTS="def i29 i30" ROUNDS=2 sh bench/gpu/calls/session15-G1.sh
