#!/bin/sh
# Session 13 A/B calls of the element-wise kernels (`D=.gpu/L2 sh THIS`): A and B are
# `npx tsx test/gpu/cases.ts prepare DIR rows|row-kernels` at the two commits under test, carried as
# D/A and D/B (cases.txt, kernels.cubin.xz). The harness runs A, B, A, B (OUT/<A|B><n>/log.txt); B1's
# outputs come back in 15 MB parts (checked here with `cases.ts check D/B OUT/B1` after `cat
# OUT/B1/outputs.part.* > OUT/B1/outputs.bin`); B2's are compared with B1's on the GPU host.
# L2 (call L2, /work/.device/4): 16-byte shared-memory loads in the ring reads (dc_lds8) and the row statistics by multiplies (dc_rsqrt), A at 8c2f04c;
# L3 (/work/.device/5): the same with every 16-byte load copied before unpacking (words unpacked by shifts), ten untimed
# launches before each timing; L4 (`D=.gpu/L4c`): the ring planes copied before the bf16-pair unpack, global loads as at A;
# L5 (`D=.gpu/L5c`): the final form, ring planes copied and unpacked from their words, global loads as at A.
set -u
D=${D:-.gpu/L2}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
for v in A B; do mkdir -p /tmp/c$v && cp $D/$v/cases.txt /tmp/c$v/ && xz -dc $D/$v/kernels.cubin.xz > /tmp/c$v/kernels.cubin; done
for n in 1 2; do for v in A B; do
  mkdir -p /tmp/o$v$n $OUT/$v$n && timeout 200 /tmp/h /tmp/c$v /tmp/o$v$n > $OUT/$v$n/log.txt 2>&1; echo "harness $v$n exit $?"
done; done
(cd /tmp/oB1 && split -b 15M outputs.bin $OUT/B1/outputs.part.)
cmp /tmp/oB1/outputs.bin /tmp/oB2/outputs.bin && echo "B outputs identical across runs"
