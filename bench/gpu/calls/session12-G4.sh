#!/bin/sh
# Session 12 calls G4, G5 (`D=.gpu/G5 sh THIS`), G13 (`D=.gpu/G13`: `prepare .gpu/rows row-kernels` at 1982430, 2 and 6
# vectors a thread among the tunings) and G11 (`D=.gpu/G11`: `prepare .gpu/rows rows` at da0e4fb, the last
# kernel changes, with the deferred flat readers). G4: session12-G3.sh's cases at the commit that vectorizes Concat
# (`npx tsx test/gpu/cases.ts prepare .gpu/rows rows`, carried as .gpu/G4/cases). G5: the row kernels only
# (`prepare .gpu/rows row-kernels`) with cases.ts's 3-stage ring tunings beside the 2-stage ones. The harness runs
# three times in a row (the spread of one kernel's median across runs), results of each run in OUT/run<N>/ (checked
# with `cases.ts check .gpu/rows OUT/run<N>`).
set -u
D=${D:-.gpu/G4}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/cases && cp $D/cases/cases.txt /tmp/cases/ && xz -dc $D/cases/kernels.cubin.xz > /tmp/cases/kernels.cubin
for n in 1 2 3; do
  mkdir -p /tmp/oc$n $OUT/run$n && timeout 150 /tmp/h /tmp/cases /tmp/oc$n > $OUT/run$n/log.txt 2>&1; echo "harness $n exit $?"
done
cd /tmp/oc1 && split -b 15M outputs.bin $OUT/run1/outputs.part. && tail -2 $OUT/run1/log.txt
cmp /tmp/oc1/outputs.bin /tmp/oc2/outputs.bin && cmp /tmp/oc1/outputs.bin /tmp/oc3/outputs.bin && echo "outputs of the three runs identical"
