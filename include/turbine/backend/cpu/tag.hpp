#pragma once
#include <string_view>

namespace turbine {

/// The CPU backend: Eigen and the thread pool, fp32 compute. The reference for every CUDA kernel.
struct Cpu {
  static constexpr std::string_view name = "cpu";  ///< as printed in logs and errors
  static constexpr bool is_gpu = false;             ///< false: host memory, no CUDA headers needed
};

/// A backend tag: a name, and whether it runs on a GPU (see Cpu, Cuda).
template <typename T>
concept Backend = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  { T::is_gpu } -> std::convertible_to<bool>;
};

}  // namespace turbine
