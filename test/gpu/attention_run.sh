#!/bin/bash
# On the GPU host, from the repository root: build the attention harness, run the prepared cases
# (.gpu/attn/cases, from `npx tsx test/gpu/attention.ts prepare .gpu/attn/cases`), then the PyTorch
# SDPA baseline in the same run, and summarise the SASS of the kernels. Everything lands in OUT.
OUT=${1:?usage: attention_run.sh OUT_DIR}
CASES=${2:-.gpu/attn/cases}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda || exit 1
timeout 300 /tmp/ah "$CASES" "$OUT" > "$OUT/log.txt" 2> "$OUT/err.txt"
echo "harness exit $?"; tail -5 "$OUT/err.txt"; grep -E "^(time|unwritten|done)" "$OUT/log.txt" | tail -60
PYTHONUNBUFFERED=1 timeout 200 python3 bench/gpu/attention_sdpa.py "$OUT" 2>&1 | tee "$OUT/sdpa.txt"
cuobjdump -sass "$CASES/kernels.cubin" > /tmp/sass.txt 2>&1
awk '/Function :/ {f=$3} /\/\*[0-9a-f]+\*\// {split($0,a,"*/"); n2=split(a[2],b," "); op=b[1]; if (op ~ /^@/) op=b[2]; sub(/\..*/,"",op); if (op ~ /^(HGMMA|QGMMA|HMMA|LDSM|SYNCS|UBLKCP|LDL|STL|MUFU|BAR|WARPGROUP)$/) n[f" "op]++} END {for (k in n) print k, n[k]}' /tmp/sass.txt | sort > "$OUT/sass-summary.txt"
grep -E "^attn_" "$OUT/sass-summary.txt" | head -40
