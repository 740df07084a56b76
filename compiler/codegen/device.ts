/**
 * What the code generators assume of the GPU they render for: the H100 SXM's 132 SMs, which size the
 * persistent grids (GEMMs, row kernels, GEMVs, copies) and the attention's waves.
 */
export const H100_SMS = 132;
