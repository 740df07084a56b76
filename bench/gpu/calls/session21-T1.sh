#!/bin/sh
# Session 21 call T1: row-kernel geometry for Qwen-Image's rows (timing experiment, not kept unless faster): the
# default (about 4 vectors of 8 a thread: LayerNorm+Modulate+Quantize 128 threads, GELU+Quantize 384) against about
# 1 (384 and 768 threads), compiled with DC_ROW_VPT=1 (a temporary override of ROW_TUNING.vectorsPerThread), the rest
# identical; .gpu/T1s21/art.tar.xz art/qwen-{v4,v1}. G1 (outputs compared, steps alternating), then both profiled.
set -u
D=.gpu/T1s21 MODELS=qwen VARIANTS="v4 v1" ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session15-G1.sh
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
for v in v4 v1; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/qwen-$v --synthetic-weights 42 --time 5 --profile --json > /tmp/p.json 2>/dev/null; echo "profile qwen-$v rc $?"
  tail -1 /tmp/p.json > $OUT/profile-qwen-$v.json
done
