// Compiles the CPU model type once for the whole application (see app_model.hpp).
#include <turbine/turbine.hpp>
#include <turbine/instantiate.hpp>

TURBINE_INSTANTIATE_MODEL(turbine::Spec<turbine::f32, turbine::quant::None, turbine::kv::Same, turbine::Cpu>);
