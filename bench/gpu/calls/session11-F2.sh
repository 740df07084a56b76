#!/bin/sh
# Session 11 call F2: where Flux.2's attention kernels spend their cycles (issues 6, 7). Cases prepared with
# `ATTN_CASES='^(flux2_single_fp8|flux2_single_fp8pv|flux2_single)$' npx tsx test/gpu/attention.ts prepare .gpu/F2/cases`:
# bf16, FP8 Q·Kᵀ (the default) and FP8 Q·Kᵀ + P·V on the 1 x 48 x 4608 x 128 single-stream node. The harness
# alone (times), then Nsight Compute on the first launch of each attention kernel, then their SASS.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/o /tmp/o2; nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
timeout 120 /tmp/ah .gpu/F2/cases /tmp/o > $OUT/harness.txt 2>&1; echo "harness exit $?"; grep -E "^time" $OUT/harness.txt
NCU=/usr/local/cuda/bin/ncu
timeout 400 $NCU --kernel-id ::regex:^attn_:1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
  --section SchedulerStats --section InstructionStats --section Occupancy \
  --metrics smsp__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,smsp__inst_executed_pipe_alu.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__cycles_elapsed.avg.per_second,smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_wait_per_issue_active.ratio,smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio,smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio \
  /tmp/ah .gpu/F2/cases /tmp/o2 > $OUT/ncu.txt 2>&1; echo "ncu exit $?"
grep -E "attn_|Duration|SM Frequency|Compute \(SM\) Throughput|Issue Slots Busy|Warp Cycles Per Issued|pipe|stalled|No Eligible|Executed Ipc A" $OUT/ncu.txt | cut -c1-160 | head -120
# (SASS: cuobjdump -sass -fun KERNEL .gpu/F2/cases/kernels.cubin, fetched by the first try of this call)
ls -la $OUT
