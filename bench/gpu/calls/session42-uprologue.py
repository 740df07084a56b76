"""Session 42: one more mark for the unit-level timeline, applied after bench/gpu/calls/session41-utrace.py: slot k = 10 of each
consumer warpgroup (4 + 14w + 10) when its prologue is done (Q's row scales and K's block scales in shared memory, past
their named barrier), to tell that prologue's latency from Q's copy (k = 1). Since f2289bb only the e4m3 Q·Kᵀ kernels
have that prologue (s8 Q·Kᵀ takes its scales from producer warp 1): the mark renders in those alone.
Usage: python3 bench/gpu/calls/session42-uprologue.py"""
from template_edit import TemplateEdit

t = TemplateEdit()
t.rep("    for (int i = threadIdx.x - 128; i < {{ kBlocks128 }}; i += 256) dca_sts_f(sKsc + 4 * i, __ldg(ksHead + i));\n    dca_named_sync(3, 256);\n",
      "    for (int i = threadIdx.x - 128; i < {{ kBlocks128 }}; i += 256) dca_sts_f(sKsc + 4 * i, __ldg(ksHead + i));\n    dca_named_sync(3, 256);\n    UT(10);\n")
t.write()
