#pragma once
// The W4A16 weight layout on the GPU and its in-register dequantization, shared by the 4-bit
// GEMV (gemv_w4.cuh) and GEMMs (gemm_w4.cuh, gemm_w4_wgmma.cuh). Group-wise asymmetric 4-bit
// integers (AWQ / RTN: w = (q - z) * s, one fp16 scale and integer zero per `group` inputs of a row):
//   qweight  uint32 [n, k / 8]: word j of a row holds inputs 8j .. 8j+7, input 8j + 2i in nibble i
//            and 8j + 2i + 1 in nibble i + 4, so that (word >> 4i) & 0x000F000F is the pair
//            (2i, 2i+1) in the two halves of a 32-bit register
//   params   half2 [n, k / group]: {s, 1024 + z}
// Dequantization: a nibble q OR'ed into 0x6400 is the fp16 number 1024 + q, so one LOP3 and one
// HSUB2 give q - z exactly, and one HMUL2 gives (q - z) * s rounded once to fp16: the same value as
// the fp16 weights the f16 engine would upload from these integers.
#include <atomic>
#include <cstdint>
#include <vector>

#include "../../core/half.hpp"
#include "../../core/storage_type.hpp"
#include "../../core/thread_pool.hpp"
#include "../../core/weight_matrix.hpp"
#include "check.cuh"
#include "types.cuh"

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

// Dynamic shared memory over 48 KB needs an opt-in per kernel: raised whenever a launch needs more
// than this kernel was raised to on this device (as launch_gemv_kernel).
template <auto kKernel>
void w4_allow_smem(size_t smem, int tokens, int k) {
  if (smem <= 48 * 1024) return;
  static std::atomic<size_t> raised[64];  // per kernel (kernels of one signature share a pointer type)
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  if (smem <= raised[dev & 63].load(std::memory_order_acquire)) return;
  int limit = 0;
  cudaFuncAttributes attr{};
  TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  TURBINE_CUDA_CHECK(cudaFuncGetAttributes(&attr, kKernel));
  const size_t most = size_t(limit) - attr.sharedSizeBytes;
  check(smem <= most, "gemv_w4: ", tokens, " tokens of k = ", k, " need ", smem,
        " bytes of shared memory; this GPU allows ", most, " (decode fewer sequences at once)");
  TURBINE_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  raised[dev & 63].store(smem, std::memory_order_release);
}

static __device__ __forceinline__ uint32_t w4_lop3_and_or(uint32_t a, uint32_t mask, uint32_t bits) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(r) : "r"(a), "r"(mask), "r"(bits));  // (a & mask) | bits
  return r;
}

static __device__ __forceinline__ __half2 w4_as_half2(uint32_t u) { return *reinterpret_cast<const __half2*>(&u); }
static __device__ __forceinline__ uint32_t w4_as_u32(__half2 h) { return *reinterpret_cast<const uint32_t*>(&h); }

// The four input pairs of one word as fp16 q - z, exactly (small integers). Pairs 0 and 2 sit in
// the low nibbles of word and word >> 8: OR'ed into 0x6400 they are 1024 + q, less 1024 + z. Pairs
// 1 and 3 sit 4 bits higher: OR'ed into 0x6400 they are 1024 + 16q, and (1024 + 16q) / 16 - (64 + z)
// in one HFMA2 is exact (a power-of-two product, an integer sum). So one shift, four LOP3 and four
// half2 ops per word, where shifting each nibble pair down takes three more shifts.
// z1024 = {1024 + z} (the params' high half), nz64 = {-(64 + z)}.
static __device__ __forceinline__ void w4_q_minus_z8(uint32_t word, __half2 z1024, __half2 nz64, uint32_t (&out)[4]) {
  const uint32_t hi = word >> 8;
  const __half2 sixteenth = w4_as_half2(0x2C002C00u);  // 1/16
  out[0] = w4_as_u32(__hsub2(w4_as_half2(w4_lop3_and_or(word, 0x000F000Fu, 0x64006400u)), z1024));
  out[1] = w4_as_u32(__hfma2(w4_as_half2(w4_lop3_and_or(word, 0x00F000F0u, 0x64006400u)), sixteenth, nz64));
  out[2] = w4_as_u32(__hsub2(w4_as_half2(w4_lop3_and_or(hi, 0x000F000Fu, 0x64006400u)), z1024));
  out[3] = w4_as_u32(__hfma2(w4_as_half2(w4_lop3_and_or(hi, 0x00F000F0u, 0x64006400u)), sixteenth, nz64));
}

// 8 weights of one word, dequantized into the 16-byte fragment layout of gemv_mma_chunk: (q - z) * s
// rounded once to fp16, the value the fp16 engine would upload.
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

// w4_dequant8 with w4_q_minus_z8's fewer shifts: the same values, bit for bit ((q - z) is exact).
static __device__ __forceinline__ uint4 w4_dequant8_fast(uint32_t word, __half2 s2, __half2 z1024, __half2 nz64) {
  uint32_t q[4];
  w4_q_minus_z8(word, z1024, nz64, q);
#pragma unroll
  for (int i = 0; i < 4; ++i) q[i] = w4_as_u32(__hmul2(w4_as_half2(q[i]), s2));
  return make_uint4(q[0], q[1], q[2], q[3]);
}

}  // namespace detail

}  // namespace turbine::cuda
