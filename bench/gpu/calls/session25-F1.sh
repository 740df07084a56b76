#!/bin/sh
# Session 25 call F1: the session's final tree (quantization by the reciprocal, b359feb) against its start (8359691;
# kernels as 4031fb9's), both models: session 21's F1 (outputs of new against old, steps alternating, three rounds,
# then `npx bench --no-baseline` on the new artifacts) on .gpu/F25/art.tar.xz.
set -u
D=.gpu/F25 ROUNDS=3 sh bench/gpu/calls/session21-F1.sh
