#pragma once
// The CUDA backend module: kernels for every layer op, each with a host launcher.
#include "tag.hpp"
#include "check.cuh"
#include "types.cuh"
#include "device_buffer.cuh"
#include "norm.cuh"
#include "embedding.cuh"
#include "activation.cuh"
#include "rope.cuh"
#include "gemv.cuh"
#include "gemm.cuh"
#include "attention_prefill.cuh"
#include "attention_decode.cuh"
