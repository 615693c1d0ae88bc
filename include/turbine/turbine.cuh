#pragma once
// turbine with the CUDA backend: include this from a .cu file compiled by nvcc.
#include "turbine.hpp"
#include "backend/cuda/cuda.cuh"
#include "model/cuda_transformer.cuh"
