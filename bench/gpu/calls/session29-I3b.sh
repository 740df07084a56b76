#!/bin/sh
# Session 29 call I3b: call I3's .gpu/i3new once more for its outputs (I3 brought back only its logs: 8 files a call), and
# the portable cubin (mma.sync, sm_100a's path); checked here with `attention.ts check .gpu/i3new OUT [_portable]`.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
timeout 200 /tmp/ah .gpu/i3new $OUT > $OUT/log.txt 2>&1; echo "rc $?"
timeout 200 /tmp/ah .gpu/i3new $OUT kernels_portable.cubin outputs_portable.bin > $OUT/log_portable.txt 2>&1; echo "portable rc $?"
