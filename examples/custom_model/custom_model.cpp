// A model type composed from parts, without editing turbine: Llama's attention, an MLP with GELU
// where Llama has SiLU, and a norm written here (LayerNorm without bias). It runs a tiny model
// and checks every position's logits against a reference computed below in plain loops from the
// same weights.
//   custom_model MODEL_DIR    (e.g. tests/data/tiny_models/llama_tied: any Llama-layout model)
#include <cmath>
#include <cstdio>
#include <numbers>
#include <vector>

#include <turbine/turbine.hpp>

namespace app {

using turbine::Activations;
using turbine::LayerWeights;
using turbine::ModelConfig;

/// LayerNorm without bias: y = (x - mean(x)) / sqrt(var(x) + eps) * gamma. Any template with this
/// forward() can be DecoderLayer's norm (turbine::NormLayer says what it must provide).
template <class Spec>
struct LayerNorm {
  static void forward(const ModelConfig& c, const std::vector<float>& gamma, const float* x, float* y, int64_t tokens) {
    const int64_t d = c.hidden_size;
    for (int64_t t = 0; t < tokens; ++t) {
      const float* xr = x + t * d;
      float* yr = y + t * d;  // may be xr: read everything before writing
      float mean = 0, var = 0;
      for (int64_t i = 0; i < d; ++i) mean += xr[i];
      mean /= static_cast<float>(d);
      for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      const float inv = 1.0f / std::sqrt(var / static_cast<float>(d) + c.rms_norm_eps);
      for (int64_t i = 0; i < d; ++i) yr[i] = (xr[i] - mean) * inv * gamma[i];
    }
  }
};

/// down(gelu(gate(h)) * up(h)): the gated MLP with GELU (tanh form) in place of SiLU.
template <class Spec>
struct GeluMlp {
  static void forward(const ModelConfig& c, const LayerWeights& w, Activations& a, int64_t tokens, float* out) {
    turbine::cpu::linear(w.w_gate, a.h.data(), tokens, a.gate.data());  // [tokens, intermediate]
    turbine::cpu::linear(w.w_up, a.h.data(), tokens, a.up.data());      // [tokens, intermediate]
    turbine::cpu::gelu_mul(a.gate.data(), a.up.data(), tokens * c.intermediate_size, a.gate.data());
    turbine::cpu::linear(w.w_down, a.gate.data(), tokens, out);  // [tokens, hidden]
  }
};

/// The model type: fp32 on the CPU, weights as stored, Llama's attention, our norm and MLP.
using Model = turbine::Decoder<turbine::Spec<turbine::f32>, LayerNorm, turbine::SelfAttention, GeluMlp>;

// ---- The reference: the same model in plain loops, sharing nothing with turbine but the file reader.

using Matrix = std::vector<float>;  // [rows, cols], row-major

Matrix dense(const turbine::WeightMatrix& m) {
  Matrix out(static_cast<size_t>(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) turbine::io::dequantize_row(m.type, m.row(r), out.data() + r * m.cols, m.cols);
  return out;
}

// y[n] = W[n, :] . x (+ b[n])
std::vector<float> matvec(const turbine::WeightMatrix& w, const std::vector<float>& x, const std::vector<float>& b = {}) {
  const Matrix W = dense(w);
  std::vector<float> y(static_cast<size_t>(w.rows));
  for (int64_t n = 0; n < w.rows; ++n) {
    double s = b.empty() ? 0.0 : b[n];
    for (int64_t k = 0; k < w.cols; ++k) s += static_cast<double>(W[n * w.cols + k]) * x[k];
    y[n] = static_cast<float>(s);
  }
  return y;
}

std::vector<float> layer_norm(const std::vector<float>& x, const std::vector<float>& gamma, float eps) {
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= static_cast<double>(x.size());
  for (float v : x) var += (v - mean) * (v - mean);
  var /= static_cast<double>(x.size());
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>((x[i] - mean) / std::sqrt(var + eps) * gamma[i]);
  return y;
}

// Rotates pairs (i, i + d/2) of each head by pos * theta^(-2i/d) (default rope, no scaling).
void rope(std::vector<float>& v, int64_t heads, int64_t d, int64_t pos, float theta) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < d / 2; ++i) {
      const double angle = pos * std::pow(static_cast<double>(theta), -2.0 * i / d);
      float& a = v[h * d + i];
      float& b = v[h * d + i + d / 2];
      const double x0 = a, x1 = b;
      a = static_cast<float>(x0 * std::cos(angle) - x1 * std::sin(angle));
      b = static_cast<float>(x1 * std::cos(angle) + x0 * std::sin(angle));
    }
}

/// Logits [tokens][vocab] of the whole sequence.
std::vector<std::vector<float>> reference_logits(const turbine::ModelWeights& w, const std::vector<int32_t>& ids) {
  const ModelConfig& c = w.config;
  const int64_t T = static_cast<int64_t>(ids.size()), d = c.head_dim, group = c.num_heads / c.num_kv_heads;
  const Matrix E = dense(w.embed);
  std::vector<std::vector<float>> x(ids.size());  // [tokens][hidden], the residual stream
  for (int64_t t = 0; t < T; ++t) x[t].assign(E.begin() + ids[t] * c.hidden_size, E.begin() + (ids[t] + 1) * c.hidden_size);
  for (const LayerWeights& l : w.layers) {
    std::vector<std::vector<float>> q(T), k(T), v(T);  // [tokens][heads * d], [tokens][kv_heads * d] x2
    for (int64_t t = 0; t < T; ++t) {
      const auto h = layer_norm(x[t], l.attn_norm, c.rms_norm_eps);
      q[t] = matvec(l.wq, h, l.bq);
      k[t] = matvec(l.wk, h, l.bk);
      v[t] = matvec(l.wv, h, l.bv);
      rope(q[t], c.num_heads, d, t, c.rope_theta);
      rope(k[t], c.num_kv_heads, d, t, c.rope_theta);
    }
    for (int64_t t = 0; t < T; ++t) {
      std::vector<float> attn(static_cast<size_t>(c.num_heads * d), 0.0f);  // [heads * d]
      for (int64_t h = 0; h < c.num_heads; ++h) {
        const int64_t kh = h / group;
        std::vector<double> p(static_cast<size_t>(t + 1));
        double max = -1e300, sum = 0;
        for (int64_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(q[t][h * d + i]) * k[s][kh * d + i];
          p[s] = dot / std::sqrt(static_cast<double>(d));
          max = std::max(max, p[s]);
        }
        for (auto& e : p) sum += (e = std::exp(e - max));
        for (int64_t s = 0; s <= t; ++s)
          for (int64_t i = 0; i < d; ++i) attn[h * d + i] += static_cast<float>(p[s] / sum * v[s][kh * d + i]);
      }
      const auto o = matvec(l.wo, attn);
      for (int64_t i = 0; i < c.hidden_size; ++i) x[t][i] += o[i];
      const auto h = layer_norm(x[t], l.mlp_norm, c.rms_norm_eps);
      auto g = matvec(l.w_gate, h);
      const auto u = matvec(l.w_up, h);
      for (size_t i = 0; i < g.size(); ++i) {
        const double z = g[i];
        g[i] = static_cast<float>(0.5 * z * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (z + 0.044715 * z * z * z))) * u[i]);
      }
      const auto down = matvec(l.w_down, g);
      for (int64_t i = 0; i < c.hidden_size; ++i) x[t][i] += down[i];
    }
  }
  std::vector<std::vector<float>> logits(ids.size());
  for (int64_t t = 0; t < T; ++t) logits[t] = matvec(w.lm_head, layer_norm(x[t], w.final_norm, c.rms_norm_eps));
  return logits;
}

double relative_error(const float* ours, const std::vector<float>& ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff += (ours[i] - ref[i]) * static_cast<double>(ours[i] - ref[i]);
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return std::isfinite(diff) ? std::sqrt(diff / norm) : INFINITY;
}

}  // namespace app

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: custom_model MODEL_DIR   (e.g. tests/data/tiny_models/llama_tied)\n");
    return 2;
  }
  try {
    turbine::ModelWeights weights = turbine::load_weights(argv[1]);
    const turbine::ModelConfig& c = weights.config;
    turbine::check(c.rope_scaling.kind == turbine::RopeScaling::Kind::None && c.sliding_window == 0, argv[1],
                   ": the reference below knows plain rope and full attention only");
    const std::vector<int32_t> ids{1, 17, 42, 99, 5, 63, 7, 120, 33, 2};
    const auto ref = app::reference_logits(weights, ids);

    app::Model model(weights);
    const int64_t vocab = c.vocab_size;
    auto cache = model.new_cache(32);
    std::vector<float> logits;  // [tokens, vocab]
    model.forward(cache, std::span(ids).first(8), logits, /*all_logits=*/true);
    double worst = 0;
    for (size_t t = 0; t < 8; ++t) worst = std::max(worst, app::relative_error(logits.data() + t * vocab, ref[t]));
    for (size_t t = 8; t < ids.size(); ++t) {  // then one token at a time, through the KV cache
      model.forward(cache, std::span(ids).subspan(t, 1), logits);
      worst = std::max(worst, app::relative_error(logits.data(), ref[t]));
    }
    // The parts matter: the stock Llama gives other logits for the same weights.
    turbine::Llama<> llama(weights);
    auto llama_cache = llama.new_cache(32);
    llama.forward(llama_cache, ids, logits);
    const double stock = app::relative_error(logits.data(), ref.back());

    std::printf("custom_model: %zu positions, max relative error vs the plain-loop reference %.2e "
                "(the stock Llama differs by %.2e)\n", ids.size(), worst, stock);
    if (!(worst < 1e-4) || !(stock > 1e-2)) {
      std::fprintf(stderr, "custom_model: FAILED\n");
      return 1;
    }
    std::printf("custom_model: ok\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
