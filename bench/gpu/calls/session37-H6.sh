#!/bin/sh
# Session 37 call H6: loading weights.bin after its part hashes are checked on worker threads while it uploads through two
# page-locked buffers (runtime/gpu/weights-check.ts, uploadFile). bench/gpu/weights-load.ts on an 8 GiB file, two rounds of
# before (sha256 of the whole file, then the pageable upload) / after; then the tiny Flux.2 transformer compiled for h100 with
# its real weights (one part), run against PyTorch's output by run-cli, and a copy with one weights.bin byte flipped.
# Predicted: before ~2.3 GB/s hashing (one core) then ~3.3 GB/s upload, ~1.4 GB/s in all; after, the max of the parts check
# (8 threads) and the upload, 2-4x faster; the tiny transformer within its bar; the flipped copy refused naming part 0.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this tree + weights-load.mjs, sharp.tar.xz left behind), .gpu/H6 (the tiny
# artifact, its inputs and PyTorch's output); tiny .onnx.data left behind.
set -u
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | tee $OUT/gpu.txt
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
timeout 300 /tmp/node .gpu/rt/weights-load.mjs --gib 8 --rounds 2 2>&1 | tee $OUT/weights-load.txt
tar -xJf .gpu/H6/tinyflux.tar.xz -C /tmp
timeout 120 sh .gpu/rt/run.sh /tmp/tinyflux-h6 --inputs .gpu/H6/fix --reference .gpu/H6/fix --min-cosine 0.995 2>&1 | tail -6 | tee $OUT/tiny.txt
echo "run-cli rc $?"
cp -r /tmp/tinyflux-h6 /tmp/tinyflux-flip
python3 -c "
b=bytearray(open('/tmp/tinyflux-flip/weights.bin','rb').read()); b[5000]^=1; open('/tmp/tinyflux-flip/weights.bin','wb').write(b)"
timeout 120 sh .gpu/rt/run.sh /tmp/tinyflux-flip --inputs .gpu/H6/fix 2>&1 | tail -3 | tee $OUT/tiny-flip.txt
echo "run-cli (flipped) rc $?"
