#!/bin/sh
# Session 41, call A6: V's channel scales staged in shared memory at the CTA's start for the epilogue (vs), and with the next
# wave's Q prefetched to L2 (pfvs), against 85c5ae1 (so2). vs: ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv|qwen_image_t32_fp8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv)$';
# so2 / pfvs: '^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv)$'.
DIRS="so2:.gpu/v/so2 vs:.gpu/v/vs pfvs:.gpu/v/pfvs" ROUNDS=3 TIMEOUT_S=150 KEEP=vs sh bench/gpu/calls/attention-ab.sh
