#pragma once
// The CUDA backend module.
#include "tag.hpp"
#include "check.cuh"
#include "types.cuh"
#include "device_buffer.cuh"
