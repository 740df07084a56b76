#!/bin/sh
# Runs bench/gpu/encode-stage.ts (bundled: no Node on the GPU host) over session 36's F3 Flux.2 artifact (.gpu/F3, synthetic
# weights 42) with the heuristic's GEMM algorithms (DC_GEMM_TUNING=off): ROUNDS rounds, each running every NAME=BUNDLE given
# once, in the order given (so bundles alternate across rounds), 8 requests a run.
# Usage (in a device call, from the repository root): sh bench/gpu/encode_stage_rounds.sh ROUNDS NAME=BUNDLE...
# Writes gpu.txt and, per NAME, encode-stage-NAME.txt (each request's line) to $OUT, and prints the lines.
set -u
ROUNDS=$1; shift
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art && tar -xJf .gpu/F3/pipe-flux2.tar.xz -C /tmp/art
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
export DC_GEMM_TUNING=off
for round in $(seq "$ROUNDS"); do
  for pair in "$@"; do
    name=${pair%%=*} bundle=${pair#*=}
    echo "--- $name (round $round)"
    timeout 100 /tmp/node "$bundle" /tmp/art/flux2-dev --requests 8 2>&1 | grep "^request" | tee -a $OUT/encode-stage-$name.txt | cut -c1-300
  done
done
