#!/bin/sh
# Session 11 call F4: bf16-P·V attention with a stale running max (rescaleSlack 8: O rescaled only in the
# tiles that move a row's max by more than 2^8) against 05f0ca5's kernels, same cases, alternating twice.
# Prepared with ATTN_CASES='^(flux2_single|flux2_joint|flux2_single_fp8|qwen_image_mask|qwen_image_mask_fp8|
# mistral_causal_gqa|tiny_flux2_joint|tiny_qwen_image_mask|tiny_mistral_causal_gqa)$'
# `npx tsx test/gpu/attention.ts prepare .gpu/F4/{old,new}` (old: compiler/codegen/attention.ts and the template at 05f0ca5).
# Then here: `npx tsx test/gpu/attention.ts check .gpu/F4/new OUT/new` (the new kernels' outputs).
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/old $OUT/new; nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
for r in 1 2; do
  for v in old new; do
    d=/tmp/old; [ $v = new ] && d=$OUT/new
    timeout 120 /tmp/ah .gpu/F4/$v $d > /tmp/log-$v-$r.txt 2>&1; echo "$v round $r exit $?"
    grep -E "^time" /tmp/log-$v-$r.txt | sed "s/^/$v $r /"
  done
done > $OUT/times.txt
cat $OUT/times.txt; cp /tmp/log-new-1.txt $OUT/new/log.txt; grep -h unwritten /tmp/log-new-1.txt
for v in old new; do for k in $(grep -E "^launch attn_" .gpu/F4/$v/cases.txt | awk '{print $2}'); do
  cuobjdump -sass -fun $k .gpu/F4/$v/kernels.cubin | python3 -c "
import re,sys,collections
ops=[(int(m.group(1),16),m.group(2)) for m in (re.search(r'/\*([0-9a-f]{4})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)',l) for l in sys.stdin) if m]
print('$v $k total', len(ops), 'uniform', sum(1 for a,o in ops if o.startswith('U')), 'mufu', sum(1 for a,o in ops if o.startswith('MUFU')))"
done; done | tee $OUT/sass-counts.txt
ls -la $OUT $OUT/new
