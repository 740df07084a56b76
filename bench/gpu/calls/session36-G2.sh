#!/bin/sh
# Session 36 call G2 (as run, in one line): call G1's first run, then the same with glibc's mmap threshold at 32 MiB
# (GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432), so that the text encoder's 15.7 MB output buffers come from the
# heap and are reused rather than mapped afresh: a test of whether fresh pages make the first requests' stage slower.
# carry: .gpu/rt, .gpu/F3; tiny .onnx.data left behind.
set -u; nvidia-smi --query-gpu=name,serial --format=csv,noheader; mkdir -p /tmp/art && tar -xJf .gpu/F3/pipe-flux2.tar.xz -C /tmp/art; xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node; ldd /tmp/node | grep libc; for env in "X=1" "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432"; do echo "$env"; env $env timeout 120 /tmp/node .gpu/rt/encode-stage.mjs /tmp/art/flux2-dev --requests 8 2>&1 | grep -E "^request"; done
