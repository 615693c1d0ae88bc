// A user's norm whose forward() does not have the signature DecoderLayer calls is refused with
// the signature it needs, not with an error deep inside the layer.
// expect: the Norm part of turbine::DecoderLayer needs static void forward
#include <turbine/model/transformer.hpp>  // the model module alone keeps the test fast

template <class Spec>
struct MyNorm {
#ifdef TURBINE_FAILTEST
  static void forward(const float* x, float* y, int64_t n);  // forgot the config and gamma
#else
  static void forward(const turbine::ModelConfig& c, const std::vector<float>& gamma, const float* x, float* y,
                      int64_t tokens) {
    turbine::cpu::rms_norm(x, gamma.data(), tokens, c.hidden_size, c.rms_norm_eps, y);
  }
#endif
};

using Model = turbine::Decoder<turbine::Spec<turbine::f32>, MyNorm>;

int main() { return sizeof(Model) > 0 ? 0 : 1; }
