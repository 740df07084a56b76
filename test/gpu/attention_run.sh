#!/bin/bash
# On the GPU host, from the repository root: build the attention harness, run the prepared cases
# (.gpu/attn/cases, from `npx tsx test/gpu/attention.ts prepare .gpu/attn/cases`), then the PyTorch
# SDPA baseline in the same run, and summarise the SASS of the kernels. Everything lands in OUT.
OUT=${1:?usage: attention_run.sh OUT_DIR}
CASES=${2:-.gpu/attn/cases}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda || exit 1
timeout 90 /tmp/ah "$CASES" "$OUT" > "$OUT/log.txt" 2>&1
echo "harness exit $?"; grep -E "^(time|unwritten)" "$OUT/log.txt"; tail -2 "$OUT/log.txt"
timeout 90 /tmp/ah "$CASES" "$OUT" kernels_portable.cubin outputs_portable.bin > "$OUT/log_portable.txt" 2>&1
echo "portable harness exit $?"; grep -E "^(time|unwritten)" "$OUT/log_portable.txt" | grep -v " 0$"; tail -2 "$OUT/log_portable.txt"
PYTHONUNBUFFERED=1 timeout 150 python3 bench/gpu/attention_sdpa.py "$OUT" 2>&1
cuobjdump -sass "$CASES/kernels.cubin" > /tmp/sass.txt 2>&1 || echo "cuobjdump failed"
python3 - /tmp/sass.txt > "$OUT/sass-summary.txt" <<'PY'
import collections, re, sys
count, fn = collections.Counter(), None
for line in open(sys.argv[1]):
    m = re.search(r'Function : (\S+)', line)
    if m: fn = m.group(1); continue
    m = re.search(r'\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)', line)
    if fn and m and m.group(1) in ('HGMMA', 'QGMMA', 'HMMA', 'LDSM', 'MUFU', 'LDL', 'STL', 'UBLKCP', 'SYNCS', 'BAR', 'WARPGROUP'): count[(fn, m.group(1))] += 1
for (f, op), n in sorted(count.items()): print(f, op, n)
PY
grep -E "^attn_" "$OUT/sass-summary.txt" | head -40
