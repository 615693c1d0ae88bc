// turbine quantize --device cuda: the AWQ searches on the GPU (backend/cuda/awq_search.cuh). Its
// own translation unit so that the CPU parts of the CLI compile without nvcc.
#include <turbine/backend/cuda/awq_search.cuh>

#include "quantize_device.hpp"

namespace turbine::cli {

QuantizedModel quantize_on_cuda(const ModelWeights& w, const std::vector<std::vector<int32_t>>& calibration,
                                const QuantizeOptions& opt) {
  cuda::AwqSearch search;
  return quantize_model(w, calibration, opt, search);
}

}  // namespace turbine::cli
