#!/bin/sh
# Session 12 calls G10 and G12 (`D=.gpu/G12 sh THIS`), each an A/B of the row kernels in one call:
# G10: the quotient without the prescale multiply (dc_qdiv1 where a row's k is 1), A at 3d2338a, B at 7b539e8;
# G12: a Modulate's 1 + scale computed once a CTA (render.ts hoistedScales), A at 52687ca, B at the change.
# A and B = `npx tsx test/gpu/cases.ts prepare DIR row-kernels` at those commits;
# the harness runs A, B, A, B (OUT/<A|B><n>/log.txt; checked with `cases.ts check DIR OUT/<A|B><n>`; outputs.bin of
# A1 and B1 come back, the others are compared with them here).
set -u
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
D=${D:-.gpu/G10}
for v in A B; do mkdir -p /tmp/c$v && cp $D/$v/cases.txt /tmp/c$v/ && xz -dc $D/$v/kernels.cubin.xz > /tmp/c$v/kernels.cubin; done
for n in 1 2; do for v in A B; do
  mkdir -p /tmp/o$v$n $OUT/$v$n && timeout 150 /tmp/h /tmp/c$v /tmp/o$v$n > $OUT/$v$n/log.txt 2>&1; echo "harness $v$n exit $?"
done; done
for v in A B; do (cd /tmp/o${v}1 && split -b 15M outputs.bin $OUT/${v}1/outputs.part.); cmp /tmp/o${v}1/outputs.bin /tmp/o${v}2/outputs.bin && echo "$v outputs identical across runs"; done
