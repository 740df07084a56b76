"""Session 31's attention turn trace, summarised: per consumer warpgroup, the median clocks of each phase of a ping-pong
turn (waiting for the turn, issuing Q·Kᵀ and P·V, waiting for Q·Kᵀ, the softmax, waiting for P·V, rescale and pack) and the
turn's period, from the `trace` lines the harness prints after each case's attention timing when the kernel carries
session31-trace.patch's clock() marks (CTA 7, lane 0 of each consumer warpgroup, tiles 2-30).
Usage: python3 bench/gpu/calls/session31-trace-summary.py HARNESS_OUTPUT"""
import sys,collections,statistics
lines=open(sys.argv[1]).read().splitlines()
data={};last=None
for l in lines:
    if l.startswith('time'):
        p=l.split(); last=(p[1],p[2])
        if p[2]=='attention': data[p[1]]=[]
    elif l.startswith('trace') and last and last[1]=='attention':
        data[last[0]].append(l)
for case,bl in data.items():
    print('==',case)
    rows={}
    for l in bl:
        p=l.split(); rows[(p[2],int(p[3][1:]))]=list(map(int,p[4:]))
    for w in ['wg0','wg1']:
        ds=[]
        for j in range(2,30):
            v=rows.get((w,j)); vn=rows.get((w,j+1))
            if not v or not vn or v[0]==0 or vn[0]==0: continue
            ds.append([(v[k+1]-v[k])&0xffffffff for k in range(6)]+[(vn[0]-v[0])&0xffffffff])
        if ds:
            med=[statistics.median(x[k] for x in ds) for k in range(7)]
            print(w,'turns',len(ds),'median clk: wait-turn %d | issue %d | wait-QK %d | softmax %d | wait-PV %d | rescale+pack %d || period %d'%tuple(med))
