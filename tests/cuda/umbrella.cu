// turbine.cuh compiles with nvcc and the CUDA runtime answers; the kernels have their own suites.
#include <doctest/doctest.h>

#include <turbine/turbine.cuh>

#include "test_support.hpp"

TEST_CASE("the CUDA umbrella header compiles and sees the devices") {
  static_assert(turbine::Cuda::is_gpu);
  const int n = turbine::cuda::device_count();
  if (n == 0) return turbine::test::skip("no CUDA device on this machine");
  int dev = -1;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  CHECK(dev >= 0);
  void* p = nullptr;
  TURBINE_CUDA_CHECK(cudaMalloc(&p, 1 << 20));
  TURBINE_CUDA_CHECK(cudaFree(p));
}
