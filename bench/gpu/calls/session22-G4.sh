#!/bin/sh
# Session 22 call G4: row-kernel changes, each meant bit-identical: per-run inputs (Qwen-Image's per-batch modulation)
# held as floats unpacked once a run instead of packed bf16 unpacked with every row; a Concat's parts counted as a row
# array in the CTAs-an-SM rule (Flux.2's Concat+Quantize at 1 CTA an SM instead of 2, where it spilled 36 bytes).
# Flux.2 and Qwen-Image at HEAD a90a77b (old) and with the change (new), .gpu/G4/art.tar.xz: session 19's V4 (outputs of
# new against old, steps alternating, three rounds, each variant's profile).
set -u
D=.gpu/G4 ROUNDS=3 sh bench/gpu/calls/session19-V4.sh
