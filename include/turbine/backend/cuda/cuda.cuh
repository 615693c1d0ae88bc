#pragma once
// The CUDA backend module.
#include "tag.hpp"
#include "check.cuh"
