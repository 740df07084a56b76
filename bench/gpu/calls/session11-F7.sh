#!/bin/sh
# Session 11 call F7: correctness of the attention kernels after this session's template changes (descriptors
# made once; the stale running max) on the paths calls F3-F5 did not run: INT8 Q·Kᵀ (block and per-token K
# scales), FP8 P·V joint, and the tiny fixtures' every row. Prepared at b05e918 with ATTN_CASES='^(flux2_single|
# flux2_single_int8|qwen_image_mask|qwen_image_mask_int8|tiny_flux2_int8|tiny_flux2_int8_joint|
# tiny_qwen_image_mask_int8|tiny_qwen_image_mask_int8_ktoken|flux2_single_int8_ktoken|tiny_flux2_fp8pv_joint|
# tiny_qwen_image_mask|tiny_flux2_fp8)$' `npx tsx test/gpu/attention.ts prepare .gpu/F7/new` (carried as
# .gpu/F7c/new.tar.xz without expected.json); checked here with `attention.ts check .gpu/F7/new OUT/new`.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/c $OUT/new && tar -xJf .gpu/F7c/new.tar.xz -C /tmp/c
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
timeout 200 /tmp/ah /tmp/c/new $OUT/new > $OUT/new/log.txt 2>&1; echo "harness exit $?"
grep -E "^(time|unwritten)" $OUT/new/log.txt
