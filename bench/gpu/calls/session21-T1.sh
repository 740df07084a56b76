#!/bin/sh
# Session 21 call T1: row-kernel geometry for Qwen-Image's rows (timing experiment, not kept unless faster): the
# default (about 4 vectors of 8 a thread: LayerNorm+Modulate+Quantize 128 threads, GELU+Quantize 384) against about
# 1 (384 and 768 threads), compiled with DC_ROW_VPT=1 (a temporary override of ROW_TUNING.vectorsPerThread), the rest
# identical; .gpu/T1s21/art.tar.xz art/qwen-{v4,v1}. G1 (outputs compared, steps alternating), then both profiled.
set -u
D=.gpu/T1s21 VARIANTS="v4 v1" ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session21-R1.sh
