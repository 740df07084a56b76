#!/bin/sh
# Session 37 call H3: call H2 found Flux.2's steps 4 and 8 slower only inside the device loop (257 / 250 ms against 237-241),
# their data being no slower alone (243.6 / 243.9 ms, like every step's, on that card), with or without the step memo.
# Here the card's SM clock, power and clock-event reasons are sampled every 25 ms (nvidia-smi -lms) while
# bench/gpu/step-data.ts runs 4 requests with the loop on the device (the host's wall clock at each step's end printed), then
# 24 replays of the graph alone, one at a time.
# Predicted: the slow steps coincide with SM clock dips under the power cap (the card's own power control), not with host work.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this commit + step-data.mjs, sharp.tar.xz left behind), .gpu/F3 (flux2 only
# unpacked); tiny .onnx.data left behind.
set -u
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvidia-smi --help-query-gpu | grep -i "reasons.active\|power.draw.instant\|clocks.sm\b" | head -5
mkdir -p /tmp/art && tar -xJf .gpu/F3/pipe-flux2.tar.xz -C /tmp/art
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
export DC_GEMM_TUNING=off
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,power.draw.instant,temperature.gpu,clocks_event_reasons.active --format=csv,noheader -lms 25 > $OUT/smi.csv 2>&1 &
SMI=$!
timeout 200 /tmp/node .gpu/rt/step-data.mjs /tmp/art/flux2-dev --host-request 0 --device-requests 4 --series 24 2>&1 | grep -v "^weights\|^GEMM\|^device:\|^loaded" | tee $OUT/step-data-flux2.txt
kill $SMI
wc -l $OUT/smi.csv; head -3 $OUT/smi.csv
