#!/bin/sh
# Session 37 call H2: call H1 found Flux.2's steps 4 and 8 inside every request 12-22 ms slower than the others (about 236 ms),
# in the same places in every request, while the transformer's graph alone ran 235.75 ms. bench/gpu/step-data.ts over session
# 36's F3 Flux.2 artifact: one request with the loop on the host, timing after each step the graph alone and the memo's
# restoring step on that step's inputs; then two requests with the loop on the device; then the same without the step memo.
# Predicted: if the data make steps 4 and 8 slower, their graphs alone are slower too; if not, the loop's conditions do.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this commit + step-data.mjs, sharp.tar.xz left behind), .gpu/F3 (flux2 only
# unpacked); tiny .onnx.data left behind.
set -u
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art && tar -xJf .gpu/F3/pipe-flux2.tar.xz -C /tmp/art
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
export DC_GEMM_TUNING=off
timeout 200 /tmp/node .gpu/rt/step-data.mjs /tmp/art/flux2-dev --reps 5 --device-requests 3 2>&1 | grep -v "^weights\|^GEMM\|^device:\|^loaded" | tee $OUT/step-data-flux2.txt
echo "--- DC_STEP_MEMO_MB=0"
DC_STEP_MEMO_MB=0 timeout 200 /tmp/node .gpu/rt/step-data.mjs /tmp/art/flux2-dev --reps 5 --device-requests 3 2>&1 | grep -v "^weights\|^GEMM\|^device:\|^loaded" | tee $OUT/step-data-flux2-nomemo.txt
