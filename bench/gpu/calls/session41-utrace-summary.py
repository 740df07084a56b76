"""Session 41: summarises the unit-level timelines (OUT/utrace-CASE.bin from bench/gpu/calls/session41-utrace.py): each
whole unit's phases in SM clocks (medians), the gaps between one CTA's end and the next CTA's start on the same SM.
Usage: python3 bench/gpu/calls/session41-utrace-summary.py OUT/utrace-CASE.bin FULL_UNITS TILES"""
import sys
import numpy as np

t = np.fromfile(sys.argv[1], dtype=np.uint64).reshape(-1, 32).astype(np.int64)
full, tiles = int(sys.argv[2]), int(sys.argv[3])
entry, sm = t[:, 0], t[:, 2]
wg = [t[:, 4:14], t[:, 18:28]]
end = np.maximum(wg[0][:, 9], wg[1][:, 9])
names = ['start', 'Q in', 'first turn', 'first turn end', 'loop end', 'last turn', 'last P·V', 'other hand-over', 'O / l', 'end']
med = lambda x: float(np.median(x))
for w in (0, 1):
    a = wg[w][:full]
    prev, row = entry[:full], []
    for k in range(10):
        if w == 1 and k == 7: continue
        row.append(f'{names[k]} +{med(a[:, k] - prev):.0f}'); prev = a[:, k]
    print(f'wg{w}: ' + ', '.join(row) + f'; total {med(a[:, 9] - entry[:full]):.0f}')
d = end[:full] - entry[:full]
print(f'unit duration clocks: median {med(d):.0f}, p10 {np.percentile(d, 10):.0f}, p90 {np.percentile(d, 90):.0f}; '
      f'loop a turn {med(wg[0][:full, 4] - wg[0][:full, 3]) / (tiles - 1):.0f}')
gaps = []
for s in np.unique(sm):
    idx = np.where(sm == s)[0]
    idx = idx[np.argsort(entry[idx])]
    gaps += [entry[b] - end[a] for a, b in zip(idx[:-1], idx[1:]) if end[a] > 0]
print(f'gap from a CTA end to the next start on its SM: median {med(gaps):.0f}, p10 {np.percentile(gaps, 10):.0f}, p90 {np.percentile(gaps, 90):.0f}')
