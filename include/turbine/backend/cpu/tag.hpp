#pragma once
#include <string_view>

namespace turbine {

/// The CPU backend: Eigen and the thread pool, fp32 compute. The reference for every CUDA kernel.
struct Cpu {
  static constexpr std::string_view name = "cpu";
  static constexpr bool is_gpu = false;
};

template <typename T>
concept Backend = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  { T::is_gpu } -> std::convertible_to<bool>;
};

}  // namespace turbine
