#!/bin/sh
# The attention harness over prepared case folders, alternating (A/B in one call), on the GPU host. Each folder comes from
# `ATTN_CASES=... npx tsx test/gpu/attention.ts prepare DIR` (its expected.json moved out before carrying: the carry limit).
#   DIRS      "NAME:DIR ..." in the order run each round (required)
#   ROUNDS    rounds (default 3); ENERGY_S: seconds of sustained energy a case (default unset or 0: none)
#   KEEP      the NAME whose round-1 outputs and log come back (default: the last of DIRS), as outputs-NAME.bin and
#             log-NAME.txt; PORTABLE=1 also runs its portable cubin (the mma.sync path sm_100a takes) once
#             (outputs-NAME-portable.bin, log-NAME-portable.txt)
#   SASS=1    each attention kernel's SASS opcode counts, every folder (sass.txt)
#   TIMEOUT_S seconds a folder's run may take (default 300)
# Every round's time/energy/unwritten lines go to times.txt. Check here afterwards with
# `npx tsx test/gpu/attention.ts check DIR OUT -NAME` (and `-NAME-portable`), DIR holding its expected.json again.
set -u
: "${DIRS:?DIRS=\"NAME:DIR ...\"}"
ROUNDS=${ROUNDS:-3}
KEEP=${KEEP:-$(echo $DIRS | awk '{ print $NF }')}
KEEP=${KEEP%%:*}
# The harness measures energy wherever ENERGY_S is set at all: set it only for a positive value.
if [ "${ENERGY_S:-0}" = 0 ]; then unset ENERGY_S; else export ENERGY_S; fi
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee "$OUT/gpu.txt"
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl > /tmp/nvcc.log 2>&1 || { cat /tmp/nvcc.log; exit 1; }
r=1
while [ $r -le $ROUNDS ]; do
  for pair in $DIRS; do
    name=${pair%%:*}; dir=${pair#*:}
    timeout "${TIMEOUT_S:-300}" /tmp/ah "$dir" "$OUT" > /tmp/ab-log.txt 2>&1; rc=$?
    echo "round $r $name rc $rc" | tee -a "$OUT/times.txt"
    grep -E "^(time|energy)" /tmp/ab-log.txt | grep -v " pack" | tee -a "$OUT/times.txt"
    grep -E "^unwritten" /tmp/ab-log.txt | grep -v " 0$" | tee -a "$OUT/times.txt"
    if [ "$r" = 1 ] && [ "$name" = "$KEEP" ]; then mv "$OUT/outputs.bin" "$OUT/outputs-$name.bin"; cp /tmp/ab-log.txt "$OUT/log-$name.txt"; fi
    rm -f "$OUT/outputs.bin"
  done
  r=$((r + 1))
done
if [ "${PORTABLE:-0}" = 1 ]; then
  for pair in $DIRS; do
    name=${pair%%:*}; dir=${pair#*:}
    [ "$name" = "$KEEP" ] || continue
    timeout 300 /tmp/ah "$dir" "$OUT" kernels_portable.cubin "outputs-$name-portable.bin" > "$OUT/log-$name-portable.txt" 2>&1
    echo "portable $name rc $?" | tee -a "$OUT/times.txt"
    grep -E "^unwritten" "$OUT/log-$name-portable.txt" | grep -v " 0$" | tee -a "$OUT/times.txt"
  done
fi
if [ "${SASS:-0}" = 1 ]; then
  for pair in $DIRS; do
    name=${pair%%:*}; dir=${pair#*:}
    cuobjdump -sass "$dir/kernels.cubin" > /tmp/sass.txt 2>&1
    python3 bench/gpu/sass_ops.py /tmp/sass.txt "$name" >> "$OUT/sass.txt"
  done
  cat "$OUT/sass.txt"
fi
