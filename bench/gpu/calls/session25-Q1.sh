#!/bin/sh
# Session 25 call Q1: quantization by the reciprocal — every dc_qdiv / dc_qdiv1 (the row kernels' e4m3 quotient, the
# pack's and AttentionQuantizeV's V codes) as RN(x · RN(1 / s)) instead of the exact RN(x / s) (an experiment
# rendered by editing templates/preamble.cuh for the new artifacts only; not in the tree). Artifacts compiled at
# 8359691: old (as is) and new (the experiment), .gpu/R25/art.tar.xz (art/{flux,qwen}-{old,new}). Session 19's V4:
# outputs of new against old, steps alternating (ROUNDS rounds), each variant's per-launch profile.
D=.gpu/R25 ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session19-V4.sh
