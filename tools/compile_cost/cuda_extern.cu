// Compile-cost probe: the model type alone, compiled once through the explicit-instantiation
// header (what a user's model.cu holds; the Pipeline lives in plain .cpp files, see app_extern.cpp).
#include <turbine/turbine.cuh>
#include <turbine/instantiate.hpp>

TURBINE_INSTANTIATE_MODEL(turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>);
