"""CUDA-event timing shared by the bench/gpu baselines (attention_sdpa, baseline_diffusers, conv_vae,
gemm_fp8): warm-up calls, then one pair of events around each repetition of `iters` back-to-back calls."""
import statistics

import torch


def cuda_times_ms(fn, iters: int = 1, reps: int = 1, warmup: int = 2) -> list:
    """Milliseconds per call of fn, one figure per repetition."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / iters)
    return times


def median_ms(fn, iters: int = 20, reps: int = 5, warmup: int = 1) -> float:
    """The median of `reps` repetitions, in milliseconds per call."""
    return statistics.median(cuda_times_ms(fn, iters, reps, warmup))
