#!/bin/sh
# Session 22 call F1: the session's final tree (the fast sigmoid/GELU, fuse-gemm-glu, the row-kernel rules, the review's
# mends) against its start (1a40a74), both models: session 21's F1 (session 15's G1, two rounds, then `npx bench
# --no-baseline` on the new artifacts) on .gpu/F1s22/art.tar.xz.
set -u
D=.gpu/F1s22 sh bench/gpu/calls/session21-F1.sh
