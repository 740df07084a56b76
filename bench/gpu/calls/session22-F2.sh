#!/bin/sh
# Session 22 call F2: Flux.2 alone, the session's start (1a40a74, old) against its final tree (new), four rounds
# alternating (call F1's two rounds were even where call G2's three gave the SwiGLU fusion 3.5 ms), F1's artifacts.
set -u
D=.gpu/F1s22 MODELS=flux VARIANTS="old new" ROUNDS=4 sh bench/gpu/calls/session15-G1.sh
