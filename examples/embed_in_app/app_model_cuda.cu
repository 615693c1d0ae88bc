// Compiles the CUDA model type once for the whole application (see app_model.hpp), with nvcc.
#include <turbine/turbine.cuh>
#include <turbine/instantiate.hpp>

TURBINE_INSTANTIATE_MODEL(turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>);
