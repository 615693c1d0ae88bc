#pragma once
// Spec: the compile-time bundle of tags a model type is built from, and the checks that a
// combination exists (each failing check is a static_assert that says what to change).
#include "../backend/cpu/tag.hpp"
#include "../backend/cuda/tag.hpp"  // the tag only (plain C++): Spec<f16, ..., Cuda> is nameable anywhere
#include "../core/dtype.hpp"
#include "../quant/schemes.hpp"
#include <type_traits>

namespace turbine {

/// Whether backend `B` implements weight scheme `W`. A backend or scheme that adds support
/// specializes this in a plain C++ header (so .cpp files that name the Spec see it too).
template <Backend B, WeightScheme W>
inline constexpr bool backend_has_weight_scheme = std::is_same_v<W, quant::None>;

/// Whether backend `B` implements KV-cache scheme `K`. Specialize it like backend_has_weight_scheme.
template <Backend B, KvScheme K>
inline constexpr bool backend_has_kv_scheme = std::is_same_v<K, kv::Same>;

/// The CPU backend runs AWQ and RTN 4-bit weights (model/weight_scheme.hpp) with its fused
/// int4 dot products.
template <int Bits, int Group>
inline constexpr bool backend_has_weight_scheme<Cpu, quant::Awq<Bits, Group>> = true;
/// See backend_has_weight_scheme<Cpu, quant::Awq<Bits, Group>>.
template <int Bits, int Group>
inline constexpr bool backend_has_weight_scheme<Cpu, quant::Rtn<Bits, Group>> = true;

/// The CUDA backend runs AWQ and RTN 4-bit weights in f16 (backend/cuda/gemv_w4.cuh for decode,
/// a dequantized copy and the GEMM for prefill).
template <int Bits, int Group>
inline constexpr bool backend_has_weight_scheme<Cuda, quant::Awq<Bits, Group>> = true;
/// See backend_has_weight_scheme<Cuda, quant::Awq<Bits, Group>>.
template <int Bits, int Group>
inline constexpr bool backend_has_weight_scheme<Cuda, quant::Rtn<Bits, Group>> = true;

/// The CPU backend runs kv::Int8 and kv::Int4 as the numerical reference: keys and values are
/// quantized per token and head as they are written (quant/kv_quant.hpp), in an fp32 cache.
template <>
inline constexpr bool backend_has_kv_scheme<Cpu, kv::Int8> = true;
/// See backend_has_kv_scheme<Cpu, kv::Int8>.
template <>
inline constexpr bool backend_has_kv_scheme<Cpu, kv::Int4> = true;

/// The CUDA backend stores kv::Int8 and kv::Int4 caches quantized (backend/cuda/kv_quant.cuh):
/// rope_qkv quantizes each row as it is written, both attention kernels dequantize as they read.
template <>
inline constexpr bool backend_has_kv_scheme<Cuda, kv::Int8> = true;
/// See backend_has_kv_scheme<Cuda, kv::Int8>.
template <>
inline constexpr bool backend_has_kv_scheme<Cuda, kv::Int4> = true;

/// The tags of a model type: compute precision, weight scheme, KV-cache scheme and backend.
/// `Spec<f32>` is the CPU model with weights as stored and an fp32 KV cache.
template <Precision P, WeightScheme W = quant::None, KvScheme K = kv::Same, Backend B = Cpu>
struct Spec {
  using precision = P;      ///< activations and GPU weights (f32 on the CPU)
  using weight_scheme = W;  ///< how weights are quantized
  using kv_scheme = K;      ///< how the KV cache is stored
  using backend = B;        ///< where the model runs
  static_assert(B::is_gpu || std::is_same_v<P, f32>,
                "turbine::Cpu computes in f32: use turbine::f32 as the precision of a Cpu model "
                "(f16/bf16 are for turbine::Cuda)");
  static_assert(backend_has_weight_scheme<B, W>,
                "this backend does not implement the weight scheme: use turbine::quant::None, or a backend "
                "for which turbine::backend_has_weight_scheme<Backend, Scheme> is true");
  static_assert(!B::is_gpu || !W::quantized || std::is_same_v<P, f16>,
                "4-bit weights (quant::Awq, quant::Rtn) on turbine::Cuda run in f16: use turbine::f16");
  static_assert(backend_has_kv_scheme<B, K>,
                "this backend does not implement the KV-cache scheme: use turbine::kv::Same, or a backend "
                "for which turbine::backend_has_kv_scheme<Backend, Scheme> is true");
};

}  // namespace turbine
