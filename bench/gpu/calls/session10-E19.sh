#!/bin/sh
# Session 10 call E19 (5c22ef7's cluster variant with one change, rendered in a scratch worktree): the remote stage
# release as `mbarrier.arrive.shared::cluster.b64` (release at CTA scope) instead of `.release.cluster`, whose
# cluster-scope fence E18's stall sampling showed (membar stalls, and the warpgroup waiting at its MMAs for the
# leader). Plain ping-pong against the cluster variant, short timings, then 3 s each at the power cap.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 60 /tmp/go .gpu/E19/gemmf > $OUT/gemm.txt 2>&1; rc=$?; echo "harness exit $rc"
cat $OUT/gemm.txt | cut -c1-200
[ $rc = 0 ] || exit 1
GEMM_SUSTAIN_S=3 timeout 300 /tmp/go .gpu/E19/gemmf > $OUT/sustained.txt 2>&1; echo "sustained exit $?"
grep sustained $OUT/sustained.txt
