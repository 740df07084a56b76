"""Session 42: summarises the turn-level timelines (OUT/utrace-CASE.bin from bench/gpu/calls/session42-ttrace.py): for the
whole units, each warpgroup's marks in tiles 9 and 10 in SM clocks from warpgroup 0's barrier of tile 9 (medians), and
the phases between them (marks a kernel never sets, such as 'max' without that hand-over, left out).
Usage: python3 bench/gpu/calls/session42-ttrace-summary.py OUT/utrace-CASE.bin FULL_UNITS"""
import sys
import numpy as np

t = np.fromfile(sys.argv[1], dtype=np.uint64).reshape(-1, 32).astype(np.int64)[: int(sys.argv[2])]
names = ['barrier', 'issued', 'S in', 'max', 'exps', 'softmax', 'P·V in', 'P packed']
origin = t[:, 16 * 0 + 8 * 1 + 0]  # warpgroup 0, tile 9 (odd: 8 · 1), its barrier
med = lambda x: float(np.median(x))
for j in (9, 10):
    for w in (0, 1):
        base = 16 * w + 8 * (j & 1)
        marks = [f'{names[k]} {med(t[:, base + k] - origin):.0f}' for k in range(8) if t[:, base + k].any()]
        print(f'tile {j} wg{w}: ' + ', '.join(marks))
for w in (0, 1):
    a, b = t[:, 16 * w + 8:16 * w + 16], t[:, 16 * w:16 * w + 8]
    ks = [k for k in range(8) if a[:, k].any()]  # marks set (a kernel without the 'max' hand-over has no 'max' mark)
    print(f'wg{w} tile 9 -> 10 barrier to barrier: {med(b[:, 0] - a[:, 0]):.0f}; phases of tile 9: ' +
          ', '.join(f'{names[p]}->{names[k]} {med(a[:, k] - a[:, p]):.0f}' for p, k in zip(ks, ks[1:])))
