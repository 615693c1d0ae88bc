#pragma once
// W4A16 GEMM on Hopper's warpgroup MMA (wgmma, sm_90a): y[t, n] = sum_k x[t, k] W[n, k] (+ bias), W in
// the W4 layout (w4_layout.cuh). gemm_w4's kernel where the code is sm_90a, in its bulk-copy form
// (launch_gemm_w4_wgmma_bulk<16 / 32 / 64 / 128, 2>; variants "wg16_d2_xb" and on, "wg16_d2" the first form).
//
// Why. The staged mma.sync kernel (gemm_w4.cuh) issues one m16n8k16 per 16 x 8 x 16 product plus
// the instructions that feed it, and measured 0.69-0.88x cuBLAS fp16 at 64 tokens on an H200
// (PERFORMANCE.md, 2026-12-05): at 64 tokens a 4-bit GEMM is bound by the MMA issue rate, not by
// the bytes. One wgmma m64nNk16 does the work of 4N/8 of them for one instruction per warpgroup.
// Its A operand may come from registers, which is where the weights are dequantized anyway: each
// warp dequantizes exactly the A fragment it needs (rows 16w.., the mma.m16n8k16 A layout, as the
// GEMV does), and B, the activations, comes from shared memory through a matrix descriptor.
//
// Measured on an H100 (PERFORMANCE.md, 2026-12-05): at 16 tokens 1.52-1.98x cuBLAS fp16 on
// Llama-3-8B's Linears against the staged kernel's 1.35-1.62x; at 32 and 64 tokens (kN 32, 64) it
// was no faster than the staged kernel (0.76-1.34x cuBLAS), so those stayed on it until the
// bulk-copy form (below) made it faster there too. The template takes
// kN 16, 32, 64, 128 (tools/wgmma_w4_layout_check.py checks all four layouts). An H200 profile at 64
// tokens (qkv, 2026-12-06 night) put 46% of the stall samples on the first use of a loaded weight
// word; yet a 4-chunk weight ring, the block's weights prefetched to L2 at its start, and x through
// registers (one 16-byte load and one 16-byte store per core-matrix row instead of the 4-byte
// cp.async copies) were each no faster at 16-64 tokens on an H100 and were removed (PERFORMANCE.md).
// Knockouts on an H100 (2026-12-07) then showed the x copies themselves cost a third of the
// kernel at 64 tokens (the proxy fence 1-3%): the bulk-copy form (kXBulk, w4w_permute_x_kernel)
// permutes x once into the stage images and loads each stage with one bulk copy; it took
// 0.57-0.88x the cp.async form's time at 64 tokens, permutation included, and is gemm_w4's since
// 2026-12-07.
//
// Layout (PTX ISA 9.7.15; checked there, in CuTe's GMMA traits and against the CPU on an H100):
//   A (registers): warp w of a warpgroup holds rows 16w + g, 16w + g + 8 (g = lane / 4, t = lane % 4),
//     reg0 = (row g, k 2t, 2t+1), reg1 = (row g + 8, same k), reg2 = (row g, k 2t+8, 2t+9), reg3 = row g + 8.
//   D (f32, N/2 registers): d[4j + e] is (row g + 8 (e >> 1), column 8j + 2t + (e & 1)).
//   B (shared, K-major, no swizzle): 8 x 16-byte "core matrices" (8 columns = tokens, 8 k each);
//     here [step s][token block nb][k half kc][8 tokens][16 bytes]: LBO (between k halves) 128 bytes,
//     SBO (between token blocks) 256 bytes, imm-trans-b 0.
// The logical k order of a 16-wide step is free as long as A and B agree. A lane's weights are its
// 16-byte vector of 32 inputs per 128-input chunk (inputs 32t .. 32t + 31), word j (inputs 32t + 8j
// .. + 7) dequantized to pairs p = 0..3; step s = 2j + p / 2 takes pair p as k-slots 2t, 2t+1 (p
// even) or 2t+8, 2t+9 (p odd) of the lane's rows: exactly the GEMV's mapping (w4_chunk.cuh). So x
// goes to shared memory permuted the same way: pair p of x's unit u = 4t + j (inputs 8u + 2p, +1) is
// 4 bytes at slot t of row (token) of core matrix (s = 2j + p / 2, kc = p % 2).
//
// A block is two warpgroups (256 threads, 128 rows of W) and kN tokens. Per 128-input chunk: x
// through a 4-stage ring of 4-byte cp.async copies (zero-filled past the tokens and past k; in the
// bulk-copy form, one bulk copy of the stage w4w_permute_x_kernel laid out beforehand), each
// warp's weights and params through a kWD-deep register ring (gemm_w4 uses 2 chunks); the warp
// dequantizes its 8 A fragments ((q - z) * s in fp16, as the f16 engine's weights), then the
// warpgroup issues 8 wgmma. The A
// registers of one chunk stay untouched until its wgmmas are done (two register sets, alternate
// chunks, wgmma.wait_group 1), and x stage i - 2 is refilled only after the barrier that follows
// every warpgroup's wait for chunk i - 2. k is split over blocks as in the staged kernel (its
// workspace and its reduce kernel).
#include <atomic>
#include <cstdint>

#include "bulk_copy.cuh"
#include "cp_async.cuh"
#include "device_buffer.cuh"
#include "vec.cuh"
#include "w4_layout.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TURBINE_WGMMA 1
#endif

namespace turbine::cuda::detail {

inline constexpr int kW4wThreads = 256;  // two warpgroups
inline constexpr int kW4wRows = 128;     // rows of W per block: 64 per warpgroup
inline constexpr int kW4wChunk = 128;    // inputs per stage
inline constexpr int kW4wStages = 4;     // x ring: chunk i + 2 is loaded while chunks i, i - 1 are in use

template <int kN>
struct W4wTile {
  static_assert(kN == 16 || kN == 32 || kN == 64 || kN == 128, "16, 32, 64 or 128 tokens per block");
  static constexpr int kStageBytes = 8 * kN * 32;  // 8 k16 steps x kN tokens x 16 k x 2 bytes
  static constexpr int kXCopies = kN * (kW4wChunk / 8) / kW4wThreads;  // 16-byte x units per thread and stage
  static constexpr size_t kSmem = size_t(kW4wStages) * kStageBytes;
};

__device__ __forceinline__ void wgmma_fence() {
#ifdef TURBINE_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#ifdef TURBINE_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#ifdef TURBINE_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Orders the compiler's use of registers against the asynchronous wgmma: the values must stay where
// the wgmma reads (A) or writes (D) them until a wait covers it.
template <int N>
__device__ __forceinline__ void wgmma_keep(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
__device__ __forceinline__ void wgmma_keep(uint32_t (&r)[8][4]) {
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}
// Makes this thread's finished shared-memory writes (cp.async after its wait) visible to wgmma,
// which reads shared memory through the async proxy.
__device__ __forceinline__ void fence_proxy_async_shared() {
#ifdef TURBINE_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// The descriptor of a K-major, unswizzled B of 8 x 16-byte core matrices at `smem_addr`: LBO 128
// bytes (the two k halves), SBO 256 bytes (consecutive 8-token blocks).
__device__ __forceinline__ uint64_t w4w_desc(uint32_t smem_addr) {
  return uint64_t((smem_addr & 0x3FFFFu) >> 4) | (uint64_t(128 >> 4) << 16) | (uint64_t(256 >> 4) << 32);
}

// D[64 x 16] (+)= A[64 x 16] B[16 x 16]: f16 in, f32 accumulators.
__device__ __forceinline__ void wgmma_m64k16(float (&d)[8], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#ifdef TURBINE_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %13, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7}, {%8, %9, %10, %11}, %12, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
  (void)d, (void)a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}

// D[64 x 32] (+)= A[64 x 16] B[16 x 32]: f16 in, f32 accumulators.
__device__ __forceinline__ void wgmma_m64k16(float (&d)[16], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#ifdef TURBINE_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, {%16, %17, %18, %19}, %20, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
  (void)d, (void)a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}

// D[64 x 64] (+)= A[64 x 16] B[16 x 64]: f16 in, f32 accumulators.
__device__ __forceinline__ void wgmma_m64k16(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#ifdef TURBINE_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
  (void)d, (void)a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}

// D[64 x 128] (+)= A[64 x 16] B[16 x 128]: f16 in, f32 accumulators.
__device__ __forceinline__ void wgmma_m64k16(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
#ifdef TURBINE_WGMMA
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
#else
  (void)d, (void)a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}

// Byte offset in an x stage of the 16-byte core-matrix row of token `tok` that takes pair p of the
// units 4t + j (t = 0..3, one 4-byte slot each): step 2j + p / 2, k half p % 2 (see the top).
template <int kN>
__host__ __device__ constexpr uint32_t w4w_x_row(int tok, int j, int p) {
  return (tok / 8) * 256 + (tok % 8) * 16 + (2 * j + p / 2) * (kN * 32) + (p % 2) * 128;
}

// x[tok0 .., kc .. kc + 127] into the x stage at `stage` (shared address), permuted into the core
// matrices (see the top); zero-filled past the tokens and past kend. `tid` of kThreads copying threads.
template <int kN, int kThreads>
__device__ __forceinline__ void w4w_issue_x(uint32_t stage, const __half* x, int tokens, int k, int kend, int tok0,
                                            int kc, int tid) {
  static_assert((kN * 16) % kThreads == 0, "whole 16-byte x units per thread");
#pragma unroll
  for (int q = 0; q < kN * 16 / kThreads; ++q) {
    const int v = tid + kThreads * q, tok = v / 16, u = v % 16, ut = u / 4, uj = u % 4;
    const int kk = kc + 8 * u;
    const bool ok = tok0 + tok < tokens && kk < kend;
    const __half* src = ok ? x + static_cast<int64_t>(tok0 + tok) * k + kk : x;
#pragma unroll
    for (int p = 0; p < 4; ++p) cp_async4(stage + w4w_x_row<kN>(tok, uj, p) + 4 * ut, src + 2 * p, ok);
  }
}

// The 8 A fragments of one 128-input chunk from a lane's weight vectors of rows g (wa) and g + 8
// (wb) and their params (see the top: step 2j + p / 2 takes pair p of word j).
__device__ __forceinline__ void w4w_dequant(const uint4& wa, const uint4& wb, __half2 pa, __half2 pb,
                                            uint32_t (&a)[8][4]) {
  const __half2 za = __half2half2(__high2half(pa)), zb = __half2half2(__high2half(pb));
  const __half2 k960 = w4_as_half2(0x63806380u);
  const __half2 nza = __hsub2(k960, za), nzb = __hsub2(k960, zb);
  const __half2 s2a = __half2half2(__low2half(pa)), s2b = __half2half2(__low2half(pb));
  const uint32_t* wa4 = reinterpret_cast<const uint32_t*>(&wa);
  const uint32_t* wb4 = reinterpret_cast<const uint32_t*>(&wb);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint4 qa = w4_dequant8_fast(wa4[j], s2a, za, nza), qb = w4_dequant8_fast(wb4[j], s2b, zb, nzb);
    a[2 * j][0] = qa.x, a[2 * j][1] = qb.x, a[2 * j][2] = qa.y, a[2 * j][3] = qb.y;
    a[2 * j + 1][0] = qa.z, a[2 * j + 1][1] = qb.z, a[2 * j + 1][2] = qa.w, a[2 * j + 1][3] = qb.w;
  }
}

// The 8 wgmma of one chunk (x stage at `stage`), committed as one group.
template <int kN>
__device__ __forceinline__ void w4w_mma_chunk(float (&acc)[kN / 2], const uint32_t (&a)[8][4], uint32_t stage) {
  wgmma_fence();
#pragma unroll
  for (int s = 0; s < 8; ++s) wgmma_m64k16(acc, a[s], w4w_desc(stage + s * (kN * 32)), 1);
  wgmma_commit();
}

// The block's output: acc[4j + e] is row `wrow` + 8 (e >> 1), token tok0 + 8j + 2t + (e & 1); to the
// split's fp32 partials [split][token][n] or, unsplit, to y with the bias.
template <int kN>
__device__ __forceinline__ void w4w_store(const float (&acc)[kN / 2], int wrow, int tok0, int t, int n, int tokens,
                                          const __half* bias, __half* y, float* part) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = wrow + 8 * h;
    if (row >= n) continue;
    const float b = !part && bias ? __half2float(bias[row]) : 0.f;
#pragma unroll
    for (int j = 0; j < kN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int tok = tok0 + 8 * j + 2 * t + e;
        if (tok >= tokens) continue;
        const int64_t at = static_cast<int64_t>(tok) * n + row;
        const float v = acc[4 * j + 2 * h + e];
        if (part) __stcg(part + at, v);
        else y[at] = __float2half_rn(v + b);
      }
  }
}

// Runs chunk(i, q, a) for the chunks i in [0, steps), q = i % kUnroll a compile-time slot and a the
// A register set of i's parity (a0 even, a1 odd); after each chunk the other set, whose wgmma that
// chunk's wait retired, is kept alive to there, so the compiler gives its registers to nothing else
// while the hardware may still read them. Then waits for every wgmma. Guards are uniform per block.
template <int kUnroll, class Chunk>
__device__ __forceinline__ void w4w_run_chunks(int steps, uint32_t (&a0)[8][4], uint32_t (&a1)[8][4], Chunk&& chunk) {
  static_assert(kUnroll % 2 == 0, "an even unroll keeps q's parity that of i");
  for (int i = 0; i < steps; i += kUnroll) {
#pragma unroll
    for (int q = 0; q < kUnroll; ++q) {
      if (i + q < steps) {
        if (q % 2 == 0) {
          chunk(i + q, q, a0);
          wgmma_keep(a1);
        } else {
          chunk(i + q, q, a1);
          wgmma_keep(a0);
        }
      }
    }
  }
  wgmma_wait<0>();
  wgmma_keep(a0);
  wgmma_keep(a1);
}

// What a thread of the wgmma kernel works on: its place in the block, the block's tokens and
// k range, and its weight rows g and g + 8 of its warp's 16 (rows past n re-read row n - 1).
struct W4wLane {
  int tid, t, tok0, kbeg, kend, steps, group_shift, wrow;
  const uint32_t* wa;  // row wrow's packed weights
  const uint32_t* wb;  // row wrow + 8's
  const __half2* pa;   // their params
  const __half2* pb;
};
// kTokensFast: the grid is (token tiles, row blocks, splits), so that the blocks of one row block,
// which read the same weights, run side by side and all but the first find them in L2; otherwise
// (row blocks, token tiles, splits).
template <int kN, bool kTokensFast>
__device__ __forceinline__ W4wLane w4w_lane(const uint32_t* qw, const __half2* params, int n, int k, int group,
                                            int k_split) {
  W4wLane l;
  l.tid = threadIdx.x;
  const int lane = l.tid & 31, warp = l.tid >> 5, g = lane >> 2;
  const int row_block = kTokensFast ? blockIdx.y : blockIdx.x, token_tile = kTokensFast ? blockIdx.x : blockIdx.y;
  l.t = lane & 3;
  l.tok0 = token_tile * kN;
  l.kbeg = blockIdx.z * k_split;
  l.kend = min(k, l.kbeg + k_split);
  l.steps = (l.kend - l.kbeg + kW4wChunk - 1) / kW4wChunk;
  l.group_shift = 31 - __clz(group);  // group: 32, 64 or 128
  const int words = k / 8, groups = k / group;
  l.wrow = row_block * kW4wRows + 16 * warp + g;
  l.wa = qw + static_cast<int64_t>(min(l.wrow, n - 1)) * words;
  l.wb = qw + static_cast<int64_t>(min(l.wrow + 8, n - 1)) * words;
  l.pa = params + static_cast<int64_t>(min(l.wrow, n - 1)) * groups;
  l.pb = params + static_cast<int64_t>(min(l.wrow + 8, n - 1)) * groups;
  return l;
}

// x laid out for the bulk-copy form of the kernel (kXBulk): the image of token tile tt and chunk c
// (inputs 128c ..) is kStageBytes at (tt * chunks + c) * kStageBytes, laid out exactly as
// w4w_issue_x lays a stage (zeros past the tokens and past k), so that one bulk copy by one thread
// loads a stage. Thread (image, token tok, word j) loads the 4 units 4t + j (t = 0..3: inputs
// 32t + 8j .. + 7) of its token, which hold, for each pair p, the four 4-byte slots of one 16-byte
// core-matrix row (step 2j + p / 2, k half p % 2): a 4 x 4 transpose of 32-bit words by register
// naming. Why: the cp.async form moves a stage by kN * 64 copies of 4 bytes, whose issue cost the
// kernel a third of its time at 64 tokens on an H100 (tools/probe_w4_gemm_knockouts.cu;
// PERFORMANCE.md, 2026-12-07): each stage then arrives by one bulk copy through the async proxy,
// with no fence.proxy.async a chunk.
template <int kN>
__global__ static void __launch_bounds__(256)
    w4w_permute_x_kernel(const __half* __restrict__ x, __half* __restrict__ xp, int tokens, int k, int chunks,
                         int64_t threads) {
  pdl_launch_dependents();  // the GEMM may start loading its weights; it waits for us before x
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v >= threads) return;
  const int in_image = static_cast<int>(v % (kN * 4));
  const int64_t image = v / (kN * 4);  // tt * chunks + c
  const int c = static_cast<int>(image % chunks), tt = static_cast<int>(image / chunks);
  const int tok = (in_image >> 5) * 8 + (in_image & 7), j = (in_image >> 3) & 3;
  const int row = tt * kN + tok;
  uint4 u[4];
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const int kk = c * kW4wChunk + 32 * t + 8 * j;  // k is a multiple of 32: a unit is all in or out
    u[t] = row < tokens && kk < k ? __ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(row) * k + kk))
                                  : make_uint4(0, 0, 0, 0);
  }
  char* base = reinterpret_cast<char*>(xp) + image * W4wTile<kN>::kStageBytes;
  const uint32_t* w0 = reinterpret_cast<const uint32_t*>(&u[0]);
  const uint32_t* w1 = reinterpret_cast<const uint32_t*>(&u[1]);
  const uint32_t* w2 = reinterpret_cast<const uint32_t*>(&u[2]);
  const uint32_t* w3 = reinterpret_cast<const uint32_t*>(&u[3]);
#pragma unroll
  for (int p = 0; p < 4; ++p)
    *reinterpret_cast<uint4*>(base + w4w_x_row<kN>(tok, j, p)) = make_uint4(w0[p], w1[p], w2[p], w3[p]);
}

// Parts of the kernel left out to time the rest (tools/probe_w4_gemm_knockouts.cu; the results are
// then wrong): the proxy fence before the barrier, the x copies, the weight loads, the wgmma.
enum W4wKnock : int { kW4wNoFence = 1, kW4wNoX = 2, kW4wNoWeights = 4, kW4wNoMma = 8 };

// kXBulk: x is w4w_permute_x_kernel's images, each stage one bulk copy by thread 0 that completes an
// mbarrier (kW4wStages of them after the stages), and no proxy fence a chunk. kMinBlocks: blocks an
// SM the registers must leave room for (2 caps kN = 64 at 128 registers a thread, from 143, with 12
// bytes of spills: two blocks an SM instead of one, 0.84-0.95x the time on three of Llama-3-8B's
// four Linears at 64 tokens on an H100, 1.05x on o; gemm_w4's at 33-64 tokens since 2026-12-07).
template <int kN, int kWD, int kKnock = 0, bool kXBulk = false, bool kTokensFast = false, int kMinBlocks = 1>
__global__ static void __launch_bounds__(kW4wThreads, kMinBlocks)
    gemm_w4_wgmma_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params,
                         const __half* __restrict__ x, const __half* __restrict__ bias, __half* __restrict__ y, int n,
                         int k, int group, int tokens, int k_split, float* __restrict__ partials) {
#ifdef TURBINE_WGMMA
  using Tile = W4wTile<kN>;
  if (partials) pdl_launch_dependents();
  extern __shared__ __align__(128) unsigned char w4w_smem[];
  const uint32_t smem0 = static_cast<uint32_t>(__cvta_generic_to_shared(w4w_smem));
  const W4wLane L = w4w_lane<kN, kTokensFast>(qw, params, n, k, group, k_split);
  const int tid = L.tid, t = L.t, tok0 = L.tok0, kbeg = L.kbeg, kend = L.kend, steps = L.steps;

  auto issue_x = [&](int slot, int step) {
    w4w_issue_x<kN, kW4wThreads>(smem0 + slot * Tile::kStageBytes, x, tokens, k, kend, tok0, kbeg + step * kW4wChunk,
                                 tid);
  };
  uint64_t* const bars = reinterpret_cast<uint64_t*>(w4w_smem + Tile::kSmem);  // kXBulk: one a stage
  const int64_t image0 = int64_t(tok0 / kN) * ((k + kW4wChunk - 1) / kW4wChunk) + kbeg / kW4wChunk;
  const char* const ximg = reinterpret_cast<const char*>(x) + image0 * Tile::kStageBytes;  // kXBulk: images
  auto issue_bulk = [&](int slot, int step) {  // thread 0
    bulk::arrive_expect_tx(&bars[slot], Tile::kStageBytes);
    bulk::copy_g2s(w4w_smem + slot * Tile::kStageBytes, ximg + int64_t(step) * Tile::kStageBytes, Tile::kStageBytes,
                   &bars[slot]);
  };

  uint4 va[kWD], vb[kWD];  // the weight ring: chunk i in slot i % kWD
  __half2 sa[kWD], sb[kWD];
  auto load_w = [&](int r, int step) {
    const int kk = kbeg + step * kW4wChunk + 32 * t;
    if constexpr ((kKnock & kW4wNoWeights) != 0) {  // values the compiler cannot fold
      va[r] = vb[r] = make_uint4(tid * 0x01010101u, tid, kk, step);
      sa[r] = sb[r] = __halves2half2(__float2half(0.01f), __float2half(1032.f));
    } else if (step < steps && kk < kend) {
      va[r] = vec::load_stream(L.wa + kk / 8);
      vb[r] = vec::load_stream(L.wb + kk / 8);
      sa[r] = __ldg(L.pa + (kk >> L.group_shift));
      sb[r] = __ldg(L.pb + (kk >> L.group_shift));
    } else {  // past k: zero weights (x is zero there too)
      va[r] = vb[r] = make_uint4(0, 0, 0, 0);
      sa[r] = sb[r] = __half2{};
    }
  };

  float acc[kN / 2];
#pragma unroll
  for (int i = 0; i < kN / 2; ++i) acc[i] = 0.f;
  uint32_t a0[8][4], a1[8][4];  // the A fragments of even and odd chunks

  // Chunk i: its weights (ring slot r = i % kWD, then refilled with chunk i + kWD), its 8 wgmma on x stage
  // i % kW4wStages, then the wait that frees chunk i - 1 (its A set and, after the next barrier, its
  // stage).
  auto chunk = [&](int i, int r, uint32_t (&a)[8][4]) {
    constexpr bool kX = (kKnock & kW4wNoX) == 0;
    if constexpr (kXBulk) {
      bulk::wait(&bars[i % kW4wStages], (i / kW4wStages) & 1);  // chunk i's stage has landed
      __syncthreads();  // everyone waited for chunk i - 2's wgmma: its stage may be refilled
      if (tid == 0 && i + 2 < steps) issue_bulk((i + 2) % kW4wStages, i + 2);
    } else {
      if constexpr (kX) cp_async_wait<kW4wStages - 3>();  // chunk i's x copies (chunk i + 1's may still fly)
      if constexpr (kX && (kKnock & kW4wNoFence) == 0) fence_proxy_async_shared();
      __syncthreads();  // everyone's chunk i is in; everyone waited for chunk i - 2's wgmma
      if constexpr (kX) {
        if (i + 2 < steps) issue_x((i + 2) % kW4wStages, i + 2);  // the stage of chunk i - 2
        cp_async_commit();
      }
    }
    w4w_dequant(va[r], vb[r], sa[r], sb[r], a);
    load_w(r, i + kWD);
    if constexpr ((kKnock & kW4wNoMma) == 0) {
      w4w_mma_chunk<kN>(acc, a, smem0 + (i % kW4wStages) * Tile::kStageBytes);
      wgmma_wait<1>();  // chunk i - 1's wgmma are done
    } else {
      wgmma_keep(a);
    }
  };

  // Prologue: x chunks 0 and 1 (one commit group each), the weights of chunks 0 .. kWD - 1. The
  // bulk form is launched with programmatic dependent launch after the permutation of x: its
  // weights (which no earlier kernel writes) are requested before it waits for that kernel.
  if constexpr (kXBulk) {
#pragma unroll
    for (int r = 0; r < kWD; ++r) load_w(r, r);
    if (tid == 0) {
#pragma unroll
      for (int st = 0; st < kW4wStages; ++st) bulk::barrier_init(&bars[st], 1);
      bulk::fence_init();
    }
    pdl_wait();
    __syncthreads();
    if (tid == 0) {
      issue_bulk(0, 0);
      if (steps > 1) issue_bulk(1, 1);
    }
  } else {
    if constexpr ((kKnock & kW4wNoX) == 0) {
      issue_x(0, 0);
      cp_async_commit();
      if (steps > 1) issue_x(1, 1);
      cp_async_commit();
    }
#pragma unroll
    for (int r = 0; r < kWD; ++r) load_w(r, r);
  }
  w4w_run_chunks<kWD>(steps, a0, a1, chunk);
  wgmma_keep(acc);

  w4w_store<kN>(acc, L.wrow, tok0, t, n, tokens, bias, y,
                partials ? partials + static_cast<int64_t>(blockIdx.z) * tokens * n : nullptr);
#else
  __trap();  // not sm_90a code: launch_w4w_grid checks before launching
#endif
}

// Whether the code this build runs on the current device has wgmma (sm_90a): asked once per device
// by a one-thread kernel compiled like the GEMM (outside any graph capture: the first call).
__global__ static void w4w_probe_kernel(int* out) {
#ifdef TURBINE_WGMMA
  *out = 1;
#else
  *out = 0;
#endif
}
inline bool w4w_available() {
  static std::atomic<int> state[64];  // 0 unknown, 1 no, 2 yes
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  int s = state[dev & 63].load(std::memory_order_acquire);
  if (s == 0) {
    DeviceBuffer<int> flag(1, "wgmma probe");
    int host = 0;
    w4w_probe_kernel<<<1, 1>>>(flag.data());
    TURBINE_CUDA_CHECK(cudaGetLastError());
    TURBINE_CUDA_CHECK(cudaMemcpy(&host, flag.data(), sizeof(int), cudaMemcpyDeviceToHost));
    s = host ? 2 : 1;
    state[dev & 63].store(s, std::memory_order_release);
  }
  return s == 2;
}

}  // namespace turbine::cuda::detail

#undef TURBINE_WGMMA
