#pragma once
// The CPU backend module: fp32 kernels on Eigen and the thread pool.
#include "tag.hpp"
#include "linear.hpp"
#include "elementwise.hpp"
#include "rope.hpp"
#include "attention.hpp"
