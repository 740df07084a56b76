#!/bin/sh
# Session 40, call N1 (GPU host): Nsight Compute on the integer P·V's Flux.2 kernel at 7b3c35a (t3: attn_8fe79df62de5e8ed)
# and the FP8 P·V one (old: attn_52e0b8e0a38f4351): speed of light, compute pipes, warp states, instruction stats, the
# pipes' shares, and the integer kernel's SASS with its stall samples (source page).
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
NCU=/usr/local/cuda/bin/ncu
M=sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_alu.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fmaheavy.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fmalite.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_uniform.avg.pct_of_peak_sustained_active,sm__pipe_shared_cycles_active.avg.pct_of_peak_sustained_active
for dk in t3:attn_8fe79df62de5e8ed old:attn_52e0b8e0a38f4351; do
  d=${dk%%:*}; k=${dk#*:}
  timeout 240 $NCU --kernel-name $k --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
    --section InstructionStats --section SchedulerStats --section SourceCounters --metrics $M -o /tmp/rep-$d /tmp/ah .gpu/v/$d /tmp > $OUT/ncu-run-$d.txt 2>&1; echo "$d ncu rc $?"
  $NCU --import /tmp/rep-$d.ncu-rep --page details > $OUT/details-$d.txt 2>&1
  grep -E "Duration|SM Frequency|Issue Slots|Warp Cycles Per Issued|Executed Ipc A|No Eligible|Stall|pipe|gmma|Issued Warp|Eligible Warps|Active Warps" $OUT/details-$d.txt | head -60
done
$NCU --import /tmp/rep-t3.ncu-rep --page source --print-source sass --csv > $OUT/source-t3.csv 2> /dev/null; echo "source rc $?"; wc -c $OUT/source-t3.csv
