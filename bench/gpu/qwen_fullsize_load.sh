#!/bin/sh
# Functions for session 38's full-size load calls (X1, X2, X4; sourced, on the GPU host, from the repository root), over $W
# (a work folder) and $OUT:
#   qwen_fullsize_artifact  diffusers' QwenImageTransformer2DModel at its full config, its own seeded initialisation, written by
#                           save_pretrained (bench/gpu/checkpoint_check.py make, 40.9 GB; stops if /tmp has under 60 GiB
#                           free), compiled by the bundled compiler with --weights into $W/art (20.39 GB weights.bin;
#                           wall time and peak RSS printed), the checkpoint then deleted (the page cache holds weights.bin
#                           as a compile leaves it). Needs .gpu/X/diffusers-src.tar.xz and .gpu/X/qwen_image/model.onnx.
#   evict FILE              drops FILE from the page cache (fsync, posix_fadvise DONTNEED), as on a machine's first load
#   cached FILE             the share of FILE's pages in the page cache (mincore)
#   load NAME               one run-cli load and run of $W/art on the checkpoint's inputs: its log's weights.bin, load and
#                           error lines, the JSON's loadSeconds and first run; files $W/load-NAME.{json,log}
qwen_fullsize_artifact() {
  free=$(df -k --output=avail /tmp | tail -1); [ "$free" -ge $((60 * 1024 * 1024)) ] || { echo "only $free KiB free on /tmp: stopping"; exit 2; }
  mkdir -p $W/dsrc && tar -xJf .gpu/X/diffusers-src.tar.xz -C $W/dsrc && export PYTHONPATH=$W/dsrc:${PYTHONPATH:-}
  python3 bench/gpu/checkpoint_check.py make qwen_image --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy --text-valid 27 2>&1 | tail -1 | cut -c1-600; echo "make rc $?"
  /usr/bin/time -v sh .gpu/rt/run.sh compile .gpu/X/qwen_image/model.onnx --target h100 --weights $W/ckpt --out $W/art --json > $W/compile.json 2> $W/compile.log; echo "compile rc $?"
  grep -E "Elapsed|Maximum resident" $W/compile.log
  rm -rf $W/ckpt
}
evict() { python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)" "$1"; }
cached() { python3 - "$1" <<'PY'
import os, sys, ctypes
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
load() {
  timeout 240 sh .gpu/rt/run.sh $W/art --inputs $W/in --json > $W/load-$1.json 2> $W/load-$1.log; echo "load $1 rc $?"
  grep -E "^weights.bin|^load:|expected" $W/load-$1.log | cut -c1-300
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print('$1 loadSeconds', round(j['loadSeconds'], 2), 'firstRunMs', round(j.get('firstRunMs') or 0, 1))" $W/load-$1.json 2>/dev/null
}
