#!/bin/sh
# Session 36 call G1: where Flux.2's text-encode stage goes in the requests after a load (bench/gpu/encode-stage.ts,
# bundled into .gpu/rt/encode-stage.mjs): F3's Flux.2 pipeline, 8 requests back to back, once as loaded and once with the
# noise pool warmed by 6 draws first. Scratch runs before it (not kept) saw the first ~4 requests' stage at 25-30 ms and the
# later ones at 16-17 ms, with gaps between requests or without. carry: .gpu/rt, .gpu/F3; tiny .onnx.data left behind.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art && tar -xJf .gpu/F3/pipe-flux2.tar.xz -C /tmp/art
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
for w in 0 6; do
  echo "--warm-pool $w"
  timeout 120 /tmp/node .gpu/rt/encode-stage.mjs /tmp/art/flux2-dev --requests 8 --warm-pool $w 2>&1 | grep -E "^(loaded|pool|request)"
done | tee $OUT/encode-stage.txt
