#pragma once
// turbine quantize on the GPU: quantize_model with cuda::AwqSearch, defined in quantize_cuda.cu
// (compiled only in CUDA builds), called from cmd_quantize.cpp.
#include <cstdint>
#include <vector>

#include <turbine/model/quantize_model.hpp>

namespace turbine::cli {

/// quantize_model with the AWQ searches (and the calibration forward's Linears) on the GPU.
QuantizedModel quantize_on_cuda(const ModelWeights& w, const std::vector<std::vector<int32_t>>& calibration,
                                const QuantizeOptions& opt);

}  // namespace turbine::cli
