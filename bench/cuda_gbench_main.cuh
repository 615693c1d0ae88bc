// The main of a Google Benchmark GPU program (bench_cuda_kernels, bench_cuda_attention,
// bench_cuda_sampling): its flags, a visible skip on a machine without a GPU, then the program's
// body (ceilings, registration, the run, its table); an exception ends it with "NAME: what".
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <exception>
#include <turbine/backend/cuda/check.cuh>

namespace turbine::bench {

template <class Body>
int run_gpu_benchmarks(const char* name, int argc, char** argv, Body&& body) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (cuda::device_count() == 0) {
    std::printf("[skipped] no CUDA device on this machine\n");
    return 0;
  }
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}

}  // namespace turbine::bench
