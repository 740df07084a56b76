#!/bin/sh
# Session 20 call F1: the final tree's artifacts (head: the review's changes, an unused variable out of the template)
# against the ones calls R2/R3 measured (new), same synthetic weights and inputs: the outputs must be the same bytes
# (rel. L2 0); one round of step times. Artifacts in .gpu/F1/art.tar.xz (art/{flux,qwen}-{new,head}).
set -u
D=.gpu/F1 MODELS="flux qwen" VARIANTS="new head" ROUNDS=${ROUNDS:-1} sh bench/gpu/calls/session15-G1.sh
