#!/bin/sh
# Session 27 call O1: does ptxas's optimisation level change where it puts the wait for the P·V in flight (issues 6, 7)? The
# cases of call E1 (.gpu/O27 = .gpu/E27: the models' FP8 attention kernels and the packEarly variants) built three ways from
# the same unit.cu: the build's flags (kernels.cubin, ptxas -O3) and with -Xptxas -O1 / -O2 (kernels_O{1,2}.cubin, built here
# by `nvcc -cubin -O3 -std=c++17 -ftz=false -prec-div=true -prec-sqrt=true -gencode arch=compute_90a,code=sm_90a -Xptxas -O$o`).
# The harness on each, two rounds, then the SASS traces (MUFU runs between the wgmma waits) of each build's attention kernels
# (bench/gpu/sass_mufu_waits.py; call O1 printed the same trace from an inline copy, one line a kernel after the build's name).
set -u
D=${D:-.gpu/O27}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2; do for c in kernels kernels_O1 kernels_O2; do
  timeout 120 /tmp/ah $D /tmp $c.cubin outputs-$c.bin > $OUT/log-$c-$r.txt 2>&1; echo "$c round $r rc $?"
  grep -E "^time.* attention " $OUT/log-$c-$r.txt
done; done
for c in kernels kernels_O1 kernels_O2; do
  cuobjdump -sass $D/$c.cubin > /tmp/sass.txt 2>&1
  echo "# $c" >> $OUT/sass-summary.txt; python3 bench/gpu/sass_mufu_waits.py /tmp/sass.txt --trace | tee -a $OUT/sass-summary.txt
done
