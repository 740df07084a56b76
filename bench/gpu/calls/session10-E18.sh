#!/bin/sh
# Session 10 call E18 (E16's kernels): where the multicast cluster variant stalls: Nsight Compute's source counters
# (top stall locations in SASS) for it and for the plain ping-pong, Qwen-Image MLP in, one launch each.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error"; [ -x /tmp/go ] || exit 1
for k in $(awk '{print $2}' .gpu/E18/g/cases.txt); do
  timeout 200 /usr/local/cuda/bin/ncu --kernel-name $k --launch-skip 1 --launch-count 1 --section SourceCounters --section WarpStateStats --metrics smsp__pcsamp_warps_issue_stalled_barrier,smsp__pcsamp_warps_issue_stalled_long_scoreboard,smsp__pcsamp_warps_issue_stalled_wait,smsp__pcsamp_warps_issue_stalled_membar,smsp__pcsamp_warps_issue_stalled_sleeping,smsp__pcsamp_warps_issue_stalled_branch_resolving,smsp__pcsamp_warps_issue_stalled_math_pipe_throttle,smsp__pcsamp_warps_issue_stalled_misc,smsp__pcsamp_warps_issue_stalled_selected,smsp__pcsamp_warps_issue_stalled_dispatch_stall,smsp__pcsamp_warps_issue_stalled_mio_throttle,smsp__pcsamp_warps_issue_stalled_lg_throttle,smsp__pcsamp_warps_issue_stalled_short_scoreboard,smsp__pcsamp_warps_issue_stalled_no_instructions /tmp/go .gpu/E18/g > $OUT/ncu-$k.txt 2>&1
  echo "ncu $k exit $?"
  grep -E "pcsamp|Location|stall|Stall|0x" $OUT/ncu-$k.txt | head -45
done
