#pragma once
// turbine: header-only LLM inference. This umbrella is for CPU-only users and compiles with any
// C++20 compiler; include <turbine/turbine.cuh> (with nvcc) for the CUDA backend as well.
#include "core/error.hpp"
#include "core/dtype.hpp"
#include "core/thread_pool.hpp"
#include "io/gguf.hpp"
#include "io/safetensors.hpp"
#include "io/hf_config.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/chat_template.hpp"
#include "quant/schemes.hpp"
#include "backend/cpu/cpu.hpp"
#include "model/spec.hpp"
#include "model/load_model.hpp"
#include "model/transformer.hpp"
#include "model/tensor_parallel.hpp"
#include "model/extern_model.hpp"
#include "engine/generation_config.hpp"
#include "engine/sampler.hpp"
#include "engine/generate.hpp"
#include "engine/pipeline.hpp"
#include "engine/scheduler.hpp"

/// @file
/// The umbrella header for CPU-only users; <turbine/turbine.cuh> adds the CUDA backend.

/// turbine: header-only LLM inference. Compose a model type from tags (`Llama<f32>`, `Spec`,
/// `Decoder`), load a model (`load_model`, `Pipeline`), generate (`Pipeline::generate`).
namespace turbine {}
