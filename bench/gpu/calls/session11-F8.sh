#!/bin/sh
# Session 11 call F8: Flux.2's FP8 192-key attention kernel (the default: eager rescale) against the lazy rescale
# alone, the stale running max alone, and both, three rounds (issues 6, 7). Prepared with ATTN_CASES='^(flux2_single_fp8|
# flux2_single_fp8_lazy|flux2_single_fp8_slack|flux2_single_fp8_slacklazy)$' npx tsx test/gpu/attention.ts prepare .gpu/F8/c.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p $OUT/r; nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
for r in 1 2 3; do timeout 120 /tmp/ah .gpu/F8/c $OUT/r > /tmp/l$r.txt 2>&1; echo "round $r exit $?"; grep -E "^time .* attention " /tmp/l$r.txt; done
cp /tmp/l1.txt $OUT/r/log.txt
