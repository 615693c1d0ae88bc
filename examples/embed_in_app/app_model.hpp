#pragma once
// The model types of the application, named in plain C++. Their code is compiled once, in
// app_model_cpu.cpp (and app_model_cuda.cu when built with CUDA); every other file only links to it.
#include <turbine/turbine.hpp>

using CpuModel = turbine::ExternModel<turbine::Spec<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>>;
using CudaModel = turbine::ExternModel<turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>>;
