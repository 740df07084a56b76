#!/bin/sh
# Session 27 call N1: what holds the FP8 attention at about 62% of the tensor pipe (issues 6, 7): Nsight Compute on the models'
# Flux.2 single-stream kernel (attn_c9d69e00ea05f985, call O1's cases in .gpu/O27), built by the build's flags (-O3) and with
# ptxas -O1 (every exponential ahead of the P·V's wait): speed of light, compute pipes, warp states, shared memory.
set -u
D=${D:-.gpu/O27} K=${K:-attn_c9d69e00ea05f985}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
NCU=/usr/local/cuda/bin/ncu
for c in kernels kernels_O1; do
  timeout 200 $NCU --kernel-name $K --launch-count 1 --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section InstructionStats --metrics sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,sm__pipe_shared_cycles_active.avg.pct_of_peak_sustained_active \
    /tmp/ah $D /tmp $c.cubin out-$c.bin > $OUT/ncu-$c.txt 2>&1; echo "$c ncu rc $?"
  grep -E "Duration|SM Frequency|Compute \(SM\)|Memory Throughput|Issue Slots|Warp Cycles Per Issued|gmma|pipe_xu|pipe_shared|Executed Ipc A|No Eligible|Stall|Shared Memory" $OUT/ncu-$c.txt | head -40
done
