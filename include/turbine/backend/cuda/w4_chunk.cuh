#pragma once
// One lane's share of one 128-input chunk of the W4 GEMV (gemv_w4.cuh's kStream kernel): lane
// (g, c) holds the 16-byte weight vectors of rows g (a4) and g + 8 (b4) at inputs 32c .. 32c + 31
// of the chunk, and their params {scale, 1024 + zero} (a lane's 32 inputs are in one group for
// every group size). Word jj of each vector feeds the two
// m16n8k16 steps of gemv_mma_chunk with x elements kk + 8jj .. +7 of each token column, alternating
// between two accumulators (acc for even jj, acc1 for odd: two independent mma chains).
//   kScaleAfter (group 128): the mma sums (q - z) x in fp32, then one FFMA per sum applies the
//   scale (2 half2 ops per weight pair instead of 3, and the weight is never rounded);
//   otherwise the weights are (q - z) * s in fp16, the values the fp16 engine would upload.
// kCols 8-token columns (1 or 2): column col multiplies x row g + 8 col (xl0, xl1), zeros where
// x0 / x1 is false (tokens past the count, inputs past k).
#include <cstdint>

#include "gemv.cuh"
#include "w4_layout.cuh"

namespace turbine::cuda::detail {

template <int kCols, bool kScaleAfter, class XL>
__device__ __forceinline__ void w4_chunk_mma(const uint4& a4, const uint4& b4, __half2 pa, __half2 pb, const XL& xl0,
                                             const XL& xl1, bool x0, bool x1, int kk, float (&acc)[kCols][4],
                                             float (&acc1)[kCols][4]) {
  static_assert(kCols == 1 || kCols == 2, "one or two 8-token columns");
  const uint4 zero = make_uint4(0, 0, 0, 0);
  const uint32_t* a = reinterpret_cast<const uint32_t*>(&a4);
  const uint32_t* b = reinterpret_cast<const uint32_t*>(&b4);
  const __half2 za = __half2half2(__high2half(pa)), zb = __half2half2(__high2half(pb));
  const __half2 k960 = w4_as_half2(0x63806380u);                   // 960
  const __half2 nza = __hsub2(k960, za), nzb = __hsub2(k960, zb);  // -(64 + z)
  if constexpr (kScaleAfter) {
    float d0[kCols][4], d1[kCols][4];
#pragma unroll
    for (int col = 0; col < kCols; ++col)
#pragma unroll
      for (int e = 0; e < 4; ++e) d0[col][e] = d1[col][e] = 0.f;
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const uint4 xv0 = x0 ? xl0(kk + 8 * jj) : zero;
      uint32_t wa[4], wb[4];
      w4_q_minus_z8(a[jj], za, nza, wa);
      w4_q_minus_z8(b[jj], zb, nzb, wb);
      const uint4 qa = make_uint4(wa[0], wa[1], wa[2], wa[3]), qb = make_uint4(wb[0], wb[1], wb[2], wb[3]);
      gemv_mma_chunk<__half>((jj & 1) ? d1[0] : d0[0], qa, qb, xv0);
      if constexpr (kCols == 2) gemv_mma_chunk<__half>((jj & 1) ? d1[1] : d0[1], qa, qb, x1 ? xl1(kk + 8 * jj) : zero);
    }
    // d[e]: row g (e < 2) or g + 8
    const float s_a = __low2float(pa), s_b = __low2float(pb);
#pragma unroll
    for (int col = 0; col < kCols; ++col) {
      acc[col][0] = fmaf(s_a, d0[col][0] + d1[col][0], acc[col][0]);
      acc[col][1] = fmaf(s_a, d0[col][1] + d1[col][1], acc[col][1]);
      acc[col][2] = fmaf(s_b, d0[col][2] + d1[col][2], acc[col][2]);
      acc[col][3] = fmaf(s_b, d0[col][3] + d1[col][3], acc[col][3]);
    }
  } else {
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const uint4 xv0 = x0 ? xl0(kk + 8 * jj) : zero;
      const uint4 wa4 = w4_dequant8_fast(a[jj], __half2half2(__low2half(pa)), za, nza);
      const uint4 wb4 = w4_dequant8_fast(b[jj], __half2half2(__low2half(pb)), zb, nzb);
      gemv_mma_chunk<__half>((jj & 1) ? acc1[0] : acc[0], wa4, wb4, xv0);
      if constexpr (kCols == 2)
        gemv_mma_chunk<__half>((jj & 1) ? acc1[1] : acc[1], wa4, wb4, x1 ? xl1(kk + 8 * jj) : zero);
    }
  }
}

}  // namespace turbine::cuda::detail
