"""Session 31: float64 simulation of one warp's 16 rows (4608 keys in 192-key tiles, logits of standard deviation 0.5-2.5 nats,
V standard normal) of FP8 P·V's P rounding (e4m3, 256 at the running max) against exact softmax: the exact running max
per tile ("s None") against a stale max from the first tile with s log2 units of headroom (P' = 2^(x - m + 8 - s), the max
moved only where a code would pass 256), printing the output's relative L2 error and the tiles where some row of the warp
moved its max. Usage: python3 bench/gpu/calls/session31-stale-max-sim.py (numpy)."""
import numpy as np
rng=np.random.default_rng(1)
def e4m3(x):
    x=np.asarray(x,dtype=np.float64); out=np.zeros_like(x); nz=x>0
    e=np.floor(np.log2(x[nz])); e=np.maximum(e,-6)  # min normal exponent -6, subnormal step 2^-9
    step=2.0**(e-3); out[nz]=np.minimum(np.round(x[nz]/step)*step,448); return out
N=4608;T=192;D=64;R=16*8
for sig in [0.5,1.0,1.5,2.5]:
  for s in [None,0,1,2,3]:
    errs=[];slow=0;tiles=0
    for w in range(8):
        z=rng.standard_normal((16,N))*sig; x=z*np.log2(np.e)
        V=rng.standard_normal((N,D))
        ex=np.exp(z-z.max(1,keepdims=True)); Oref=(ex@V)/ex.sum(1,keepdims=True)
        O=np.zeros((16,D));l=np.zeros(16);m=np.full(16,-np.inf)
        for j in range(N//T):
            xt=x[:,j*T:(j+1)*T]
            if s is None or j==0:
                mn=np.maximum(m,xt.max(1)); alpha=2.0**(m-mn); m=mn; P=2.0**(xt-m[:,None]+8-(0 if s is None else s))
            else:
                P=2.0**(xt-m[:,None]+8-s); k=np.zeros(16)
                over=e4m3(P).max(1)>256
                tiles+=1
                if over.any():
                    slow+=1
                    pm=P.max(1); k=np.where(over,np.ceil(np.log2(pm/256)),0)
                alpha=2.0**(-k); P=P*alpha[:,None]; m=m+k
            O=O*alpha[:,None]+e4m3(P)@V[j*T:(j+1)*T]; l=l*alpha+P.sum(1)
        O=O/l[:,None]
        errs.append(np.linalg.norm(O-Oref)/np.linalg.norm(Oref))
    print(f"sig {sig} s {s}: err {np.mean(errs):.4e} slow-tiles {slow}/{tiles}")
