#pragma once
// Gated activation of the MLP: out = act(gate) * up, fp32 math, 8 elements per thread and access.
// gate and up are either separate buffers or the two halves of one fused gate_up GEMM output
// ([tokens, 2 * inter], gate first), which saves a launch and lets one GEMM produce both.
#include <cstdint>

#include "check.cuh"
#include "vec.cuh"

namespace turbine::cuda {

enum class Activation { Silu, GeluTanh };

namespace detail {

inline constexpr int kActivationThreads = 256;

template <Activation A>
static __device__ __forceinline__ float activate(float g) {
  if constexpr (A == Activation::Silu) {
    return g / (1.0f + expf(-g));
  } else {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    return 0.5f * g * (1.0f + tanhf(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
  }
}

// Row t of gate/up/out starts at t * stride; vectors_per_row = inter / 8.
template <Activation A, HalfElement T>
__global__ static void __launch_bounds__(kActivationThreads)
    gated_activation_kernel(const T* gate, const T* up, T* out, int64_t gate_stride, int64_t up_stride,
                            int64_t out_stride, int64_t vectors, int vectors_per_row) {
  pdl_launch_dependents();  // a following GEMV may start streaming its weights
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kActivationThreads + threadIdx.x;
  if (i >= vectors) return;
  const int64_t t = i / vectors_per_row;
  const int64_t j = (i - t * vectors_per_row) * 8;
  float g[8], u[8];
  vec::unpack8<T>(vec::load_stream(gate + t * gate_stride + j), g);
  vec::unpack8<T>(vec::load_stream(up + t * up_stride + j), u);
#pragma unroll
  for (int e = 0; e < 8; ++e) g[e] = activate<A>(g[e]) * u[e];
  vec::store8(out + t * out_stride + j, g);
}

}  // namespace detail

/// out[t, i] = act(gate[t * gate_stride + i]) * up[t * up_stride + i] for i < inter, written to
/// out[t * out_stride + i]. Strides and inter: multiples of 8 elements; pointers 16-byte aligned.
template <Activation A, HalfElement T>
void gated_activation(const T* gate, int64_t gate_stride, const T* up, int64_t up_stride, T* out, int64_t out_stride,
                      int tokens, int inter, cudaStream_t stream = nullptr) {
  check(tokens >= 0, "gated_activation: negative token count ", tokens);
  check(inter > 0 && inter % 8 == 0, "gated_activation: intermediate size ", inter,
        " is not supported (supported: multiples of 8)");
  check(gate_stride % 8 == 0 && up_stride % 8 == 0 && out_stride % 8 == 0,
        "gated_activation: row strides must be multiples of 8 elements");
  check(aligned16(gate) && aligned16(up) && aligned16(out), "gated_activation: pointers must be 16-byte aligned");
  if (tokens == 0) return;
  const int64_t vectors = static_cast<int64_t>(tokens) * (inter / 8);
  const auto blocks = static_cast<unsigned>(ceil_div(vectors, detail::kActivationThreads));
  detail::gated_activation_kernel<A, T><<<blocks, detail::kActivationThreads, 0, stream>>>(
      gate, up, out, gate_stride, up_stride, out_stride, vectors, inter / 8);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// out = silu(gate) * up with the fused layout: gate_up [tokens, 2 * inter] (gate then up), out
/// [tokens, inter].
template <HalfElement T>
void silu_mul_fused(const T* gate_up, T* out, int tokens, int inter, cudaStream_t stream = nullptr) {
  gated_activation<Activation::Silu>(gate_up, 2 * int64_t{inter}, gate_up + inter, 2 * int64_t{inter}, out,
                                     int64_t{inter}, tokens, inter, stream);
}

/// out = silu(gate) * up with separate buffers, each [tokens, inter].
template <HalfElement T>
void silu_mul(const T* gate, const T* up, T* out, int tokens, int inter, cudaStream_t stream = nullptr) {
  gated_activation<Activation::Silu>(gate, int64_t{inter}, up, int64_t{inter}, out, int64_t{inter}, tokens, inter,
                                     stream);
}

}  // namespace turbine::cuda
