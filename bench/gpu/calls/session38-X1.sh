#!/bin/sh
# Session 38 call X1: a cold start at full size, measured. Qwen-Image's transformer from a real safetensors checkpoint
# (bench/gpu/checkpoint_check.py make: diffusers' QwenImageTransformer2DModel at its full config, its own seeded
# initialisation, save_pretrained, 40.9 GB), compiled on the host by this tree's bundled compiler with --weights (as session
# 33's R1), then
# loaded by run-cli (one replay, its loadSeconds in the JSON):
#   A  warm: weights.bin in the page cache, as right after a compile or a recent load (part hashes on worker threads while
#      the file streams through two page-locked buffers, session 37);
#   B  cold: weights.bin dropped from the page cache first (posix_fadvise DONTNEED), as on a fresh boot of a machine;
#   C  warm, the manifest's weights.parts removed: an artifact from before session 37, weights.bin hashed whole on one thread,
#      then the same upload.
# Predicted (session 37's H6 rates, 8 GiB file): A about 4.5 s for 20.39 GB; C about 20 s of hashing (1.04 GB/s) + 4.5; B the
# disk's read rate (not known). Only single H200s are lent (64 GiB disk): 40.9 GB of checkpoint + 20.4 GB of weights.bin fit,
# Flux.2's 64 + 32 GB do not; the call stops before the checkpoint if less than 60 GiB is free.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this tree, sharp.tar.xz left behind), .gpu/compiler, .gpu/X (diffusers'
# src/diffusers as diffusers-src.tar.xz; models/full/qwen_image.onnx.br decompressed as qwen_image/model.onnx); tiny
# .onnx.data left behind.
set -u
W=/tmp/x1; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
nproc; free -g | head -2; df -h /tmp | tail -1
free=$(df -k --output=avail /tmp | tail -1); [ "$free" -ge $((60 * 1024 * 1024)) ] || { echo "only $free KiB free on /tmp: stopping"; exit 2; }
mkdir -p $W/dsrc && tar -xJf .gpu/X/diffusers-src.tar.xz -C $W/dsrc && export PYTHONPATH=$W/dsrc:${PYTHONPATH:-}
python3 bench/gpu/checkpoint_check.py make qwen_image --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy --text-valid 27 2>&1 | tail -2 | cut -c1-600; echo "make rc $?"
/usr/bin/time -v sh .gpu/rt/run.sh compile .gpu/X/qwen_image/model.onnx --target h100 --weights $W/ckpt --out $W/art --json > $OUT/compile.json 2> $OUT/compile.log; echo "compile rc $?"
grep -E "Elapsed|Maximum resident" $OUT/compile.log
ls -la $W/art | tee $OUT/artifact.txt
rm -rf $W/ckpt  # the page cache then holds weights.bin as a compile leaves it
evict() { python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)" "$1"; }
cached() { python3 - "$1" <<'PY'
import mmap, os, sys, ctypes
# pages of the file resident in the page cache (mincore), as a share
f = open(sys.argv[1], 'rb'); n = os.fstat(f.fileno()).st_size
libc = ctypes.CDLL(None, use_errno=True); page = os.sysconf('SC_PAGE_SIZE'); res = 0; step = 1 << 30
libc.mmap.restype = ctypes.c_void_p; libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]; libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
for off in range(0, n, step):
    ln = min(step, n - off); p = libc.mmap(None, ln, 1, 1, f.fileno(), off); vec = ctypes.create_string_buffer((ln + page - 1) // page)
    libc.mincore(ctypes.c_void_p(p), ln, vec); res += sum(b & 1 for b in vec.raw); libc.munmap(ctypes.c_void_p(p), ln)
print(f"page cache: {res * page / n * 100:.1f}% of {n / 1e9:.2f} GB")
PY
}
load() {  # NAME: one run-cli load and run; the JSON's loadSeconds and the log's load lines
  timeout 240 sh .gpu/rt/run.sh $W/art --inputs $W/in --json > $OUT/load-$1.json 2> $OUT/load-$1.log; echo "load $1 rc $?"
  grep -E "^weights.bin|^load:" $OUT/load-$1.log
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print('$1 loadSeconds', round(j['loadSeconds'], 2), 'firstRunMs', round(j.get('firstRunMs') or 0, 1))" $OUT/load-$1.json
}
cached $W/art/weights.bin; load A1
cached $W/art/weights.bin; load A2
evict $W/art/weights.bin; cached $W/art/weights.bin; load B1
evict $W/art/weights.bin; cached $W/art/weights.bin; load B2
cp $W/art/manifest.json $W/manifest-parts.json
python3 -c "
import json; p='$W/art/manifest.json'; m=json.load(open(p)); n=len(m['weights'].pop('parts')['sha256']); json.dump(m, open(p, 'w')); print('parts removed:', n)"
cached $W/art/weights.bin; load C1
cp $W/manifest-parts.json $W/art/manifest.json
evict $W/art/weights.bin; cached $W/art/weights.bin; load B3
