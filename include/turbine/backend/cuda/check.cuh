#pragma once
// Error checking for CUDA runtime calls: the error names the call, file and line.
#include <cuda_runtime.h>

#include "../../core/error.hpp"

#define TURBINE_CUDA_CHECK(call)                                                                   \
  do {                                                                                             \
    const cudaError_t turbine_err_ = (call);                                                       \
    if (turbine_err_ != cudaSuccess)                                                               \
      ::turbine::fail(#call, " failed at ", __FILE__, ":", __LINE__, ": ", cudaGetErrorString(turbine_err_)); \
  } while (0)

namespace turbine::cuda {

/// Number of CUDA devices, 0 when there is no usable GPU (never throws).
inline int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace turbine::cuda
