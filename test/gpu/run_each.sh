#!/bin/bash
# One harness process per case, so a faulting kernel costs only its own case (the rest still run and
# are checked): test/gpu/run_each.sh CASES_DIR OUT_DIR HARNESS_BINARY, then `cases.ts check CASES_DIR OUT_DIR`.
# A failed case's saved outputs are padded with 0xFF (NaN) so the check stays aligned.
d=$1; out=$2; h=$3
one=/tmp/one; mkdir -p $one; cp $d/kernels.cubin $one/
: > $out/outputs.bin; : > $out/log.txt
i=0
while IFS= read -r line; do
  i=$((i+1))
  echo "$line" > $one/cases.txt
  rm -rf /tmp/oneout; mkdir -p /tmp/oneout
  if timeout 30 $h $one /tmp/oneout > /tmp/oneout/log.txt 2>&1; then
    cat /tmp/oneout/outputs.bin >> $out/outputs.bin
    grep -E '^(time|device)' /tmp/oneout/log.txt >> $out/log.txt
  else
    echo "FAILED case $i ${line:0:60}" >> $out/log.txt
    tail -3 /tmp/oneout/log.txt >> $out/log.txt
    python3 -c '
import sys
f = sys.argv[1].split(); save = int(f[5]); nargs = int(f[6]); a = f[7:]
for k in range(nargs):
    d, w, n = a[6*k], int(a[6*k+1]), int(a[6*k+2])
    if d == "out" and save > 0:
        cnt = n if save == 1 else (n - 1) // save + 1
        sys.stdout.buffer.write(b"\xff" * (w * cnt))
' "$line" >> $out/outputs.bin
  fi
done < $d/cases.txt
