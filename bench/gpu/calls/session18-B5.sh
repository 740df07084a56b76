#!/bin/sh
# Session 18 call B5: the attention pack with V's transposed chunks stored as one 16-byte vector each (dcp_st16) against
# HEAD's, where the compiler split one of the two into four 4-byte stores (call B4's profile) (issue 7).
# Cases, each tree: `ATTN_CASES='^(tiny_flux2_fp8|tiny_qwen_image_mask|tiny_flux2_single|flux2_single|flux2_single_fp8|flux2_single_int8|qwen_image_t32_fp8|qwen_image_mask)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s18d` (the change) and `.gpu/s18e-old` (HEAD before it); three rounds alternating.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
mkdir -p /tmp/o-new /tmp/o-old
for r in 1 2 3; do
  timeout 100 /tmp/ah .gpu/s18e-old /tmp/o-old > /tmp/h-old.txt 2>&1; echo "round $r old exit $?"; grep -E "^time.* pack " /tmp/h-old.txt | sed "s/^/old /"
  timeout 100 /tmp/ah .gpu/s18d /tmp/o-new > /tmp/h-new.txt 2>&1; echo "round $r new exit $?"; grep -E "^time.* pack " /tmp/h-new.txt | sed "s/^/new /"
done | tee $OUT/pack-store.txt
cp /tmp/h-new.txt $OUT/log.txt; cp /tmp/o-new/outputs.bin $OUT/outputs.bin; cp /tmp/o-old/outputs.bin $OUT/outputs-old.bin
cmp /tmp/o-new/outputs.bin /tmp/o-old/outputs.bin && echo "outputs identical" | tee -a $OUT/pack-store.txt
