// Helpers of the attention kernels (templates/attention*.cu.njk), pasted once into each unit that
// holds one: shared-memory barriers (mbarrier), bulk global->shared copies completing on them,
// ldmatrix + mma.sync (the portable tensor-core path, sm_90a and sm_100a) and wgmma descriptors,
// fences and waits (sm_90a only: DCA_WGMMA). The wgmma instructions themselves, whose operand
// lists depend on the tile width, are rendered by compiler/codegen/attention.ts.
#ifndef DCA_ATTENTION_CUH
#define DCA_ATTENTION_CUH
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define DCA_WGMMA 1
#else
#define DCA_WGMMA 0
#endif
// Warpgroup register reallocation (setmaxnreg): sm_90a and sm_100a.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || defined(__CUDA_ARCH_FEAT_SM100_ALL)
#define DCA_SETMAXNREG 1
#else
#define DCA_SETMAXNREG 0
#endif

__device__ __forceinline__ uint32_t dca_smem(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// ---- mbarrier: phase-tracked barriers in shared memory; bulk copies complete on them ----------------
// Every address below is a 32-bit shared-memory address (dca_smem), which keeps registers free.
__device__ __forceinline__ void dca_mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void dca_mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
__device__ __forceinline__ void dca_mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void dca_mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(bar) : "memory");
}
__device__ __forceinline__ void dca_mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred P1;\n"
      "DC_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n"
      "@P1 bra DC_DONE;\n"
      "bra DC_WAIT;\n"
      "DC_DONE:\n"
      "}\n" :: "r"(bar), "r"(parity) : "memory");
}
// Bytes of global memory into L2 (a multiple of 16, 16-byte aligned), nothing waited for.
__device__ __forceinline__ void dca_prefetch_l2(const void* p, uint32_t bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" :: "l"(p), "r"(bytes) : "memory");
}
// `bytes` contiguous bytes (a multiple of 16, both addresses 16-byte aligned) by the copy engine.
__device__ __forceinline__ void dca_bulk_copy(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
               :: "r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}

// Named barriers (ids 1..15; 0 is __syncthreads): `count` threads, a multiple of 32.
__device__ __forceinline__ void dca_named_sync(uint32_t id, uint32_t count) { asm volatile("bar.sync %0, %1;" :: "r"(id), "r"(count) : "memory"); }
__device__ __forceinline__ void dca_named_arrive(uint32_t id, uint32_t count) { asm volatile("bar.arrive %0, %1;" :: "r"(id), "r"(count) : "memory"); }

// ---- portable tensor-core path: ldmatrix + mma.sync ------------------------------------------------
__device__ __forceinline__ void dca_ldsm_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void dca_mma_bf16(float* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void dca_mma_e4m3(float* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// s8 x s8 -> s32, exact (qk='int8' scores).
__device__ __forceinline__ void dca_mma_s8(uint32_t* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// u8 x s8 -> s32, exact (pv='int8': P's u8 codes times V's s8 codes, summed into O's s32 accumulators).
__device__ __forceinline__ void dca_mma_u8s8(uint32_t* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
               : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Four floats in [-128.5, 128) to their nearest integers (ties to even) as s8 bytes, byte i from the i-th argument
// (V's s8 codes, pv='int8': dca_vt8_chunk): 12582912 + x rounds to the float 12582912 + round(x), whose low byte is the
// integer's two's complement: an add a value and three byte permutes, no conversion instruction.
__device__ __forceinline__ uint32_t dca_pack_b8x4(float a, float b, float c, float d) {
  const uint32_t ua = __float_as_uint(__fadd_rn(a, 12582912.f)), ub = __float_as_uint(__fadd_rn(b, 12582912.f));
  const uint32_t uc = __float_as_uint(__fadd_rn(c, 12582912.f)), ud = __float_as_uint(__fadd_rn(d, 12582912.f));
  return __byte_perm(__byte_perm(ua, ub, 0x0040), __byte_perm(uc, ud, 0x0040), 0x5410);
}

// pv='int8': P' (in [0, 255.5)) as f16 pairs. dca_f16x2: two floats to a pair, lo in the low half (cvt.rn.f16x2.f32);
// dca_hadd2: pairs added (add.rn.f16x2: the row sums' tree); dca_f16x2_sum: a pair's halves summed in fp32;
// dca_pack_u8x4_f16: four u8 codes from two pairs, byte i from the i-th value (lo of ab, hi of ab, lo of cd, hi of cd):
// 1024 + x in f16 rounds to 1024 + round(x) (ties to even), the integer in each half's low byte, then one byte permute.
__device__ __forceinline__ uint32_t dca_f16x2(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t dca_hadd2(uint32_t a, uint32_t b) {
  const __half2 d = __hadd2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
  return *reinterpret_cast<const uint32_t*>(&d);
}
__device__ __forceinline__ float dca_f16x2_sum(uint32_t h) {
  const __half2 v = *reinterpret_cast<const __half2*>(&h);
  return __low2float(v) + __high2float(v);
}
__device__ __forceinline__ uint32_t dca_pack_u8x4_f16(uint32_t ab, uint32_t cd) {
  return __byte_perm(dca_hadd2(ab, 0x64006400u), dca_hadd2(cd, 0x64006400u), 0x6420);
}

// An s32 MMA sum to fp32 (cvt.rn.f32.s32, I2FP on sm_90; exact below 2^24). Inline assembly rather
// than __int2float_rn: with the intrinsic ptxas spilled the masked ping-pong int8 kernel (Qwen-Image).
__device__ __forceinline__ float dca_s32_f32(uint32_t s) {
  float f;
  asm("cvt.rn.f32.s32 %0, %1;" : "=f"(f) : "r"(s));
  return f;
}
// A float to / from a shared-memory address.
__device__ __forceinline__ void dca_sts_f(uint32_t addr, float x) { asm volatile("st.shared.f32 [%0], %1;" :: "r"(addr), "f"(x) : "memory"); }
__device__ __forceinline__ float dca_lds_f(uint32_t addr) {
  float v;
  asm volatile("ld.shared.f32 %0, [%1];" : "=f"(v) : "r"(addr));
  return v;
}
// Two floats to a shared-memory address.
__device__ __forceinline__ void dca_sts_f2(uint32_t addr, float x, float y) {
  asm volatile("st.shared.v2.f32 [%0], {%1, %2};" :: "r"(addr), "f"(x), "f"(y) : "memory");
}
// Two floats from a shared-memory address.
__device__ __forceinline__ float2 dca_lds_f2(uint32_t addr) {
  float2 v;
  asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(addr));
  return v;
}
// 16 bytes from a shared-memory address.
__device__ __forceinline__ uint4 dca_lds_u4(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr) : "memory");
  return v;
}

// ---- maths ------------------------------------------------------------------------------------------
// 2^x, the hardware approximation (relative error ~2^-22), flushing denormal results to zero.
__device__ __forceinline__ float dca_exp2(float x) { float y; asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
// An additive mask value in log2 units: huge negatives clamped to stay finite (a row masked by
// -3.4e38 everywhere averages, as the reference does), -inf kept.
__device__ __forceinline__ float dca_mask_log2(float m) {
  return m < -1e37f ? (m == -INFINITY ? -INFINITY : -1.4426950408889634e37f) : m * 1.4426950408889634f;
}
__device__ __forceinline__ uint32_t dca_pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
// An additive key mask value over a column's factor into log2 units (ci = 1 / factor): -inf kept,
// huge negatives clamped finite (dca_mask_log2), the quotient kept above -3e38.
__device__ __forceinline__ float dca_mask_scaled(float m, float ci) {
  return m == -INFINITY ? -INFINITY : fmaxf(dca_mask_log2(m) * ci, -3e38f);
}
// 2^x on the FMA and integer pipes (sharing the load of the MUFU's ex2): x = n + f with n = round(x)
// (the 1.5·2^23 trick), |f| <= 1/2, 2^f by a degree-3 polynomial (relative error 1.1e-4), n added
// to the exponent bits. x is clamped at -126 (2^-126 at most where the true value is below): a -inf
// score (a masked key) gives 1.2e-38, not 0, and a NaN gives 2^-126, not NaN. Negligible beside a
// row's largest term (1), except in a row whose every key is masked, which would average the masked
// values instead of giving 0; the 192-key tiles that use it are bidirectional (today: Flux.2's, unmasked).
__device__ __forceinline__ float dca_exp2_poly(float x) {
  x = fmaxf(x, -126.f);
  const float t = x + 12582912.f, f = x - (t - 12582912.f);
  const float p = fmaf(fmaf(fmaf(0.05500845f, f, 0.24220827f), f, 0.69328263f), f, 1.f);
  return __int_as_float(__float_as_int(p) + (__float_as_int(t) << 23));
}
__device__ __forceinline__ void dca_store2(__nv_bfloat16* p, float a, float b) { *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b); }
__device__ __forceinline__ void dca_store2(__half* p, float a, float b) { *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b); }
__device__ __forceinline__ void dca_store2(float* p, float a, float b) { *reinterpret_cast<float2*>(p) = make_float2(a, b); }
// dca_store2's 16-bit pairs to a shared-memory address instead (the staged epilogue's O; the tag picks the type).
__device__ __forceinline__ void dca_sts_pair(uint32_t addr, __nv_bfloat16, float a, float b) {
  asm volatile("st.shared.b32 [%0], %1;" :: "r"(addr), "r"(dca_pack_bf16(a, b)) : "memory");
}
__device__ __forceinline__ void dca_sts_pair(uint32_t addr, __half, float a, float b) {
  const __half2 v = __floats2half2_rn(a, b);
  asm volatile("st.shared.b32 [%0], %1;" :: "r"(addr), "r"(*reinterpret_cast<const uint32_t*>(&v)) : "memory");
}
// Keeps the compiler from moving reads of wgmma accumulators across the wait that completes them.
__device__ __forceinline__ void dca_fence_reg(float& r) { asm volatile("" : "+f"(r) :: "memory"); }
__device__ __forceinline__ void dca_fence_reg(uint32_t& r) { asm volatile("" : "+r"(r) :: "memory"); }

#if DCA_WGMMA
// ---- wgmma (sm_90a): shared-memory matrix descriptors, fences, commit and wait ---------------------
// Descriptor of a K-major tile of 128-byte rows with the 128-byte swizzle, 8-row groups 1024 bytes
// apart (SBO), at a 1024-byte-aligned base; stepping along K inside a row adds bytes to the start.
__device__ __forceinline__ uint64_t dca_desc(uint32_t addr) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) | ((uint64_t)1 << 62);
}
// The same for K-major tiles of 64-byte rows with the 64-byte swizzle (16-byte chunk c of row r at
// c ^ ((r / 2) % 4)): 8-row groups 512 bytes apart, a 512-byte-aligned base (Vt8 of FP8 P·V).
__device__ __forceinline__ uint64_t dca_desc64(uint32_t addr) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(512 >> 4) << 32) | ((uint64_t)2 << 62);
}
__device__ __forceinline__ void dca_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void dca_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void dca_wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory"); }
#endif
#if DCA_SETMAXNREG
template <uint32_t R> __device__ __forceinline__ void dca_setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" :: "n"(R)); }
template <uint32_t R> __device__ __forceinline__ void dca_setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" :: "n"(R)); }
#endif
#endif  // DCA_ATTENTION_CUH
