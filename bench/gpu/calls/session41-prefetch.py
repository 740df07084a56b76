# Session 41, calls A5, A6 and A10: puts the next wave's Q rows (blockIdx + 132) into L2 by a bulk prefetch from each
# CTA's producer, in place in templates/attention.cu.njk as it was before ee1dae1 (which kept it as `prefetchNext`).
# Usage: python3 bench/gpu/calls/session41-prefetch.py
from template_edit import TemplateEdit

t = TemplateEdit()
old="""{%- for kb in range(qBlocks) %}
      dca_bulk_copy(sQ + {{ kb }} * BM * 128, gQ + {{ kb }}LL * {{ qBlockBytes }}, BM * 128, BAR(0));
{%- endfor %}
"""
new=old+"""      // EXPERIMENT: the Q rows of the unit a wave later (blockIdx + 132) to L2, so that its CTA's first load hits there.
      if (blockIdx.x + 132 < {{ fullUnits }}) {
        int nb = blockIdx.x + 132;
        const int nqt = nb % {{ qTiles }};
        nb /= {{ qTiles }};
        const uint8_t* nQ = reinterpret_cast<const uint8_t*>(qp) + {{ qHeadBytes }}LL * nb + (long long)nqt * BM * 128;
{%- for kb in range(qBlocks) %}
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" :: "l"(nQ + {{ kb }}LL * {{ qBlockBytes }}), "r"(BM * 128) : "memory");
{%- endfor %}
{%- if int8 %}
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" :: "l"(qs + (long long)nb * {{ qTiles * 128 }} + nqt * BM), "r"(BM * 4) : "memory");
{%- endif %}
      }
"""
t.rep(old, new)
t.write()
