// Models composed from your own layer templates (turbine::Decoder) run on the CPU backend.
// expect: turbine::Transformer and turbine::Decoder (models with your own layer templates) run on turbine::Cpu
#include <turbine/model/transformer.hpp>  // the model module alone keeps the test fast

template <class Spec>
struct PlainMlp : turbine::GatedMlp<Spec> {};

#ifdef TURBINE_FAILTEST
using S = turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>;
#else
using S = turbine::Spec<turbine::f32>;
#endif
using Model = turbine::Decoder<S, turbine::RmsNorm, turbine::SelfAttention, PlainMlp>;

int main() { return sizeof(Model) > 0 ? 0 : 1; }
