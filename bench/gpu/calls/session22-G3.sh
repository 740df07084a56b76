#!/bin/sh
# Session 22 call G3: flux2_dev's row kernels as the compiled h100 model now runs them (test/gpu/cases.ts's deferred
# model with the model's pipeline: the SwiGLU in the GEMM epilogue, so the single blocks' reader is Concat+Quantize and
# the double blocks' Quantize), each with the row tunings timed side by side (`npx tsx test/gpu/cases.ts prepare DIR
# row-kernels` at a90a77b + the cases.ts change, carried as .gpu/G3/A: cases.txt, kernels.cubin.xz). Two runs.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/cA && cp .gpu/G3/A/cases.txt /tmp/cA/ && xz -dc .gpu/G3/A/kernels.cubin.xz > /tmp/cA/kernels.cubin
for n in 1 2; do
  mkdir -p /tmp/oA$n $OUT/A$n && timeout 200 /tmp/h /tmp/cA /tmp/oA$n > $OUT/A$n/log.txt 2>&1; echo "harness A$n exit $?"
done
grep -h -E "Concat|Quantize \[|copy" $OUT/A1/log.txt | head -40
