#pragma once
// W4A16 decode GEMV: y[t, n] = sum_k x[t, k] * W[n, k] (+ bias) for 1..8 tokens, with W stored as
// group-wise asymmetric 4-bit integers (AWQ / RTN: w = (q - z) * s, one fp16 scale and integer zero
// per `group` inputs of a row), dequantized in registers. fp16 activations and weights.
//
// GPU layout (w4_pack builds it from turbine's I4G rows, storage_type.hpp):
//   qweight  uint32 [n, k / 8]: word j of a row holds inputs 8j .. 8j+7, input 8j + 2i in nibble i
//            and 8j + 2i + 1 in nibble i + 4, so that (word >> 4i) & 0x000F000F is the pair
//            (2i, 2i+1) in the two halves of a 32-bit register
//   params   half2 [n, k / group]: {s, 1024 + z}
// Dequantization: a nibble q OR'ed into 0x6400 is the fp16 number 1024 + q, so one LOP3 and one
// HSUB2 give q - z exactly, and one HMUL2 gives (q - z) * s rounded once to fp16: the same value as
// the fp16 weights the f16 engine would upload from these integers.
//
// The kernel is gemv.cuh's with a 4-bit weight stream: one block per 16 rows, warps split k, lane
// (g, c) loads 16 bytes (32 inputs) of rows g and g + 8 per 128-input chunk (4 lanes per row), the
// four words of each feed four m16n8k16 mma steps (the tokens are the n = 8 side), and the first
// step's loads go out before the programmatic-launch wait. x and the outputs use gemv.cuh's
// policies (GemvX, GemvStore).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../core/half.hpp"
#include "../../core/storage_type.hpp"
#include "../../core/thread_pool.hpp"
#include "../../core/weight_matrix.hpp"
#include "gemv.cuh"

namespace turbine::cuda {

/// A 4-bit weight matrix on the device in the layout above.
struct W4Matrix {
  const uint32_t* qweight = nullptr;  ///< [n, k / 8]
  const __half2* params = nullptr;    ///< [n, k / group] {scale, 1024 + zero}
  int n = 0;                          ///< output rows
  int k = 0;                          ///< inputs per row (a multiple of group)
  int group = 0;                      ///< inputs per scale: 32, 64 or 128
};

/// The host side of W4Matrix: what w4_pack makes, ready to copy to the device.
struct W4Host {
  std::vector<uint32_t> qweight;  ///< [n, k / 8]
  std::vector<uint32_t> params;   ///< [n, k / group] half2 bits {scale, 1024 + zero}
  int n = 0;                      ///< output rows
  int k = 0;                      ///< inputs per row
  int group = 0;                  ///< inputs per scale
};

/// Repacks a matrix stored as I4G32 / I4G64 / I4G128 rows into the GPU layout.
inline W4Host w4_pack(const WeightMatrix& m) {
  check(is_int4_groups(m.type), "w4_pack: the weights are ", storage_name(m.type), ", not group-wise 4-bit (I4G*)");
  W4Host h;
  h.n = static_cast<int>(m.rows);
  h.k = static_cast<int>(m.cols);
  h.group = storage_info(m.type).block_elems;
  const int groups = h.k / h.group, block = storage_info(m.type).block_bytes;
  h.qweight.assign(static_cast<size_t>(h.n) * (h.k / 8), 0u);
  h.params.resize(static_cast<size_t>(h.n) * groups);
  default_pool().parallel_for(h.n, [&](int64_t r0, int64_t r1) {  // rows are independent
    std::vector<uint8_t> q(static_cast<size_t>(h.group));
    for (int64_t r = r0; r < r1; ++r) {
      const std::byte* row = m.row(r);
      for (int b = 0; b < groups; ++b) {
        const auto* p = reinterpret_cast<const uint8_t*>(row + static_cast<size_t>(b) * block);
        const uint16_t scale = static_cast<uint16_t>(p[0] | (p[1] << 8));
        const uint16_t zero = f32_to_fp16(1024.0f + static_cast<float>(p[2] & 0x0F));
        h.params[static_cast<size_t>(r) * groups + b] = uint32_t(scale) | (uint32_t(zero) << 16);
        for (int e = 0; e < h.group; ++e) {  // I4G: Q4_1's nibble order within each 32
          const uint8_t byte = p[4 + 16 * (e / 32) + (e % 32) % 16];
          q[static_cast<size_t>(e)] = (e % 32) < 16 ? (byte & 0x0F) : (byte >> 4);
        }
        for (int e = 0; e < h.group; ++e) {
          const int j = (b * h.group + e) / 8, w = e % 8;
          const int nibble = (w % 2 == 0) ? w / 2 : w / 2 + 4;
          h.qweight[static_cast<size_t>(r) * (h.k / 8) + j] |= uint32_t(q[static_cast<size_t>(e)]) << (4 * nibble);
        }
      }
    }
  }, 16);
  return h;
}

namespace detail {

// 8 weights of one word, dequantized into the 16-byte fragment layout of gemv_mma_chunk.
static __device__ __forceinline__ uint4 w4_dequant8(uint32_t word, __half2 p) {
  const __half2 s2 = __half2half2(__low2half(p)), z2 = __half2half2(__high2half(p));
  uint32_t out[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t t = ((word >> (4 * i)) & 0x000F000Fu) | 0x64006400u;
    __half2 h = __hmul2(__hsub2(*reinterpret_cast<const __half2*>(&t), z2), s2);
    out[i] = *reinterpret_cast<uint32_t*>(&h);
  }
  return make_uint4(out[0], out[1], out[2], out[3]);
}

template <int kWarps, int kUnroll, class X, class E>
__global__ static void __launch_bounds__(kWarps * 32)
    gemv_w4_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params, int n, int k, int group,
                   int tokens, const X xs, const E ep) {
  pdl_launch_dependents();
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  int ra, rb;
  ep.rows(static_cast<int>(blockIdx.x), g, n, ra, rb);
  const int words = k / 8, groups = k / group;
  const uint32_t* wa = qw + static_cast<int64_t>(ra) * words + 4 * c;
  const uint32_t* wb = qw + static_cast<int64_t>(rb) * words + 4 * c;
  const __half2* pa = params + static_cast<int64_t>(ra) * groups;
  const __half2* pb = params + static_cast<int64_t>(rb) * groups;
  const bool has_x = g < tokens;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  float d0[4] = {0.f, 0.f, 0.f, 0.f}, d1[4] = {0.f, 0.f, 0.f, 0.f};
  uint4 va[kUnroll], vb[kUnroll];
  // One step: kUnroll 128-input chunks per warp; a lane's 32 inputs of a chunk start at 128 * chunk + 32c.
  auto load_w = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = (c0 + u) * 128 + 32 * c;
      const bool ok = kk < k;
      va[u] = ok ? vec::load_stream(wa + (c0 + u) * 16) : zero;
      vb[u] = ok ? vec::load_stream(wb + (c0 + u) * 16) : zero;
    }
  };
  const int first = warp * kUnroll;
  if (first * 128 < k) load_w(first);
  pdl_wait();
  xs.template prologue<kWarps * 32>(nullptr, k, tokens);
  const auto xl = xs.lane(min(g, tokens - 1), k, 0, nullptr);
  for (int c0 = first; c0 * 128 < k; c0 += kWarps * kUnroll) {
    if (c0 != first) load_w(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = (c0 + u) * 128 + 32 * c;
      const bool ok = kk < k;  // every lane joins the mma; lanes past k feed zeros
      const __half2 sa = ok ? pa[kk / group] : __half2{}, sb = ok ? pb[kk / group] : __half2{};
      const uint32_t* a = reinterpret_cast<const uint32_t*>(&va[u]);
      const uint32_t* b = reinterpret_cast<const uint32_t*>(&vb[u]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint4 xv = has_x && ok ? xl(kk + 8 * j) : zero;
        const uint4 wA = ok ? w4_dequant8(a[j], sa) : zero, wB = ok ? w4_dequant8(b[j], sb) : zero;
        gemv_mma_chunk<__half>((j & 1) ? d1 : d0, wA, wB, xv);
      }
    }
  }
  gemv_reduce_store<kWarps>(d0, d1, tokens, n, ep);
}

// One thread per word: 8 weights of one row dequantized to fp16 with one 16-byte store.
__global__ static void w4_dequantize_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params,
                                            int64_t words, int k, int group, __half* __restrict__ out) {
  const int words_per_row = k / 8, groups = k / group;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < words; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / words_per_row;
    const int col = static_cast<int>(i % words_per_row) * 8;
    *reinterpret_cast<uint4*>(out + row * k + col) = w4_dequant8(qw[i], params[row * groups + col / group]);
  }
}

template <int kWarps, int kUnroll, class X, class E>
void launch_gemv_w4_kernel(const W4Matrix& w, int tokens, const X& x, const E& e, cudaStream_t stream, bool pdl) {
  launch_kernel(gemv_w4_kernel<kWarps, kUnroll, X, E>, dim3(static_cast<unsigned>(ceil_div(w.n, kGemvRows))),
                dim3(kWarps * 32), 0, stream, pdl, w.qweight, w.params, w.n, w.k, w.group, tokens, x, e);
}

}  // namespace detail

/// y = x * W^T (+ bias) for 1..8 tokens with 4-bit W. x: [tokens, w.k] fp16, bias: [w.n] or null,
/// y: [tokens, w.n] fp16. prefetch_weights: as gemv() (programmatic dependent launch on sm_90+).
inline void gemv_w4(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                    cudaStream_t stream = nullptr, bool prefetch_weights = true) {
  check(w.n > 0 && w.k > 0 && (w.group == 32 || w.group == 64 || w.group == 128) && w.k % w.group == 0,
        "gemv_w4: bad sizes (n ", w.n, ", k ", w.k, ", group ", w.group, "; k must be a multiple of the group, 32/64/128)");
  check(tokens >= 0 && tokens <= kGemvMaxTokens, "gemv_w4: ", tokens, " tokens is not supported (supported: 1 to ",
        kGemvMaxTokens, ")");
  check(aligned16(w.qweight) && aligned16(x), "gemv_w4: qweight and x must be 16-byte aligned");
  if (tokens == 0) return;
  const bool pdl = prefetch_weights && pdl_available();
  const detail::GemvX<__half> xs{x};
  const detail::GemvStore<__half, __half> st{y, bias};
  // 128-input chunks per row: enough warps that the first step covers k up to 4096 (every weight
  // load issued before the programmatic-launch wait), fewer for small k.
  const int chunks = static_cast<int>(ceil_div(w.k, 128));
  if (chunks > 16) detail::launch_gemv_w4_kernel<8, 4>(w, tokens, xs, st, stream, pdl);
  else if (chunks > 8) detail::launch_gemv_w4_kernel<4, 4>(w, tokens, xs, st, stream, pdl);
  else detail::launch_gemv_w4_kernel<2, 4>(w, tokens, xs, st, stream, pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// W as fp16 [w.n, w.k] (16-byte aligned), for the GEMMs of prefill and large batches: the same
/// values the GEMV multiplies by.
inline void w4_dequantize(const W4Matrix& w, __half* out, cudaStream_t stream = nullptr) {
  check(aligned16(out), "w4_dequantize: out must be 16-byte aligned");
  const int64_t words = int64_t(w.n) * (w.k / 8);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(words, 256), 132 * 16));
  detail::w4_dequantize_kernel<<<blocks, 256, 0, stream>>>(w.qweight, w.params, words, w.k, w.group, out);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
