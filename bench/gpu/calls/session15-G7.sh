#!/bin/sh
# Session 15 call G7: energy (NVML's board counter) of the step's kernels and of the steps themselves.
#  1. the attention harness with ENERGY_S=2 (`ATTN_CASES='^(flux2_single|flux2_single_fp8|flux2_single_fp8pv|
#     qwen_image_mask_fp8)$' npx tsx test/gpu/attention.ts prepare .gpu/G7/cases`): each timed launch set back
#     to back for 2 s after a second's warming, joules a replay;
#  2. the GEMM harness with GEMM_SUSTAIN_S=3 (`GEMM_SHAPES='flux single fused in|qwen img qkv|flux single out'
#     GEMM_VARIANTS=q192s4n,q192s4h npx tsx bench/gpu/gemm-own.ts prepare .gpu/G7/gemm`): joules a GEMM at the cap;
#  3. Flux.2 and Qwen-Image at HEAD (npx compile ... --out .gpu/G7/art/{flux,qwen}), synthetic weights 42,
#     --time 20, two rounds each: the step's joules beside its milliseconds (run-cli's NVML reading).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
tar -xJf .gpu/G7/all.tar.xz -C /tmp
nvidia-smi --query-gpu=name,serial,driver_version,clocks.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>&1 | grep error; [ -x /tmp/ah ] || exit 1
mkdir -p /tmp/ao && ENERGY_S=2 timeout 150 /tmp/ah /tmp/cases /tmp/ao > $OUT/attention.txt 2>&1; echo "attention harness exit $?"
grep -E "^(time|energy)" $OUT/attention.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep error; [ -x /tmp/go ] || exit 1
GEMM_SUSTAIN_S=3 timeout 150 /tmp/go /tmp/gemm > $OUT/gemm.txt 2>&1; echo "gemm harness exit $?"
grep -E "^\||sustained" $OUT/gemm.txt | cut -c1-200
for round in 1 2; do for m in flux qwen; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/$m --synthetic-weights 42 --time 20 2>&1 | grep -E "time per run|energy" | sed "s/^/$m round $round: /" | tee -a $OUT/steps.txt
done; done
