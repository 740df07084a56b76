#!/bin/sh
# Session 18 call B3: s8 Q·Kᵀ with FP8 P·V (policy "int8-pv") beside int8, fp8-pv and the default (issue 6).
# Cases: `ATTN_CASES='^(tiny_flux2_fp8|tiny_qwen_image_mask|tiny_flux2_int8|tiny_flux2_fp8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv|flux2_single|flux2_single_fp8|flux2_single_int8|flux2_single_fp8pv|flux2_single_int8pv|flux2_joint|flux2_joint_fp8pv|flux2_joint_int8pv|qwen_image_t32_fp8|qwen_image_t32_int8|qwen_image_t32_fp8pv|qwen_image_t32_int8pv)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s18c` (expected.json kept aside: the tree and cases must fit a call's 64 MiB).
# The int8-pv code and cases are in bench/gpu/calls/session18-int8pv.patch (`git apply` before preparing; not kept).
# Session 17's A2: the harness three times, then the SASS; `attention.ts check` on outputs.bin here.
C=${C:-.gpu/s18c} ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session17-A2.sh
