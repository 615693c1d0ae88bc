#pragma once
#include <string_view>

namespace turbine {

/// The CUDA backend tag (kernels in backend/cuda/, compiled by nvcc in the user's translation unit).
struct Cuda {
  static constexpr std::string_view name = "cuda";  ///< as printed in logs and errors
  static constexpr bool is_gpu = true;              ///< true: device memory, needs nvcc and the CUDA headers
};

}  // namespace turbine
