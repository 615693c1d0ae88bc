// Whether the CLI can run on a GPU: a CUDA build and a device present. In CPU-only builds this
// file also supplies a run_on_cuda that explains what is missing.
#include "cli_common.hpp"

#ifdef TURBINE_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace turbine::cli {

bool cuda_available() {
#ifdef TURBINE_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
#else
  return false;
#endif
}

#ifndef TURBINE_WITH_CUDA
void run_on_cuda(const Command&, CommonOptions&) { fail("this turbine was built without CUDA"); }
#endif

}  // namespace turbine::cli
