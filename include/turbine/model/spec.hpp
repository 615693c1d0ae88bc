#pragma once
// Spec: the compile-time bundle of tags a model type is built from.
#include "../backend/cpu/tag.hpp"
#include "../core/dtype.hpp"
#include "../quant/schemes.hpp"
#include <type_traits>

namespace turbine {

template <Precision P, WeightScheme W = quant::None, KvScheme K = kv::Same, Backend B = Cpu>
struct Spec {
  using precision = P;
  using weight_scheme = W;
  using kv_scheme = K;
  using backend = B;
  static_assert(B::is_gpu || std::is_same_v<P, f32>,
                "turbine::Cpu computes in f32: use turbine::f32 as the precision of a Cpu model "
                "(f16/bf16 are for turbine::Cuda)");
};

}  // namespace turbine
