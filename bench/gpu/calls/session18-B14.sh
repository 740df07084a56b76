#!/bin/sh
# Session 18 call B14: the V quantization (AttentionQuantizeV) with CH channels a CTA and B CTAs a SM asked of ptxas (issue 7;
# timing). Variants from bench/gpu/calls/session18-vquant-ch.patch (`git apply`; VQ_CH, VQ_MB): for v in "4 2" "2 2" "2 3" "2 4" "8 1",
# `VQ_CH=$1 VQ_MB=$2 ATTN_CASES='^(flux2_single_fp8pv|qwen_image_t32_fp8pv)$' npx tsx test/gpu/attention.ts prepare .gpu/s18v-$1-$2`.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
for r in 1 2 3; do for v in 4-2 2-2 2-3 2-4 8-1; do
  mkdir -p /tmp/o-$v; timeout 100 /tmp/ah .gpu/s18v-$v /tmp/o-$v > /tmp/h-$v.txt 2>&1; echo "round $r $v exit $?"; grep -E "^time.* vquant " /tmp/h-$v.txt | sed "s/^/$v /"
done; done | tee $OUT/vquant.txt
for v in 2-2 2-3 2-4 8-1; do cmp /tmp/o-4-2/outputs.bin /tmp/o-$v/outputs.bin && echo "$v outputs identical to 4-2"; done | tee -a $OUT/vquant.txt
