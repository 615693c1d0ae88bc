// turbine info: what a model file holds and what running it costs.
#include <map>

#include "cli_common.hpp"

namespace turbine::cli {

void run_info(CommonOptions& o, bool tensors) {
  const std::string path = resolve_model(o.model);
  const LoadedModel m = load_model(path);
  const ModelConfig& c = m.config;
  std::printf("model        %s (%s)\n", m.path.c_str(), m.format.c_str());
  std::printf("architecture %s\n", architecture_name(c.arch));
  std::printf("layers %lld, hidden %lld, intermediate %lld, heads %lld (kv %lld, head_dim %lld), vocab %lld\n",
              (long long)c.num_layers, (long long)c.hidden_size, (long long)c.intermediate_size, (long long)c.num_heads,
              (long long)c.num_kv_heads, (long long)c.head_dim, (long long)c.vocab_size);
  std::printf("context %lld, rope theta %g, rms eps %g, tied embeddings %s, qkv bias %s\n",
              (long long)c.max_position_embeddings, c.rope_theta, c.rms_norm_eps, c.tie_word_embeddings ? "yes" : "no",
              c.attention_bias ? "yes" : "no");
  const RopeScaling& r = c.rope_scaling;
  switch (r.kind) {
    case RopeScaling::Kind::None: break;
    case RopeScaling::Kind::Linear: std::printf("rope scaling linear, factor %g\n", r.factor); break;
    case RopeScaling::Kind::Dynamic: std::printf("rope scaling dynamic NTK, factor %g\n", r.factor); break;
    case RopeScaling::Kind::Llama3:
      std::printf("rope scaling llama3, factor %g, low %g, high %g, original context %lld\n", r.factor, r.low_freq_factor,
                  r.high_freq_factor, (long long)r.original_max_position_embeddings);
      break;
    case RopeScaling::Kind::Factors: std::printf("rope scaling by %zu per-frequency divisors (rope_freqs)\n", r.freq_factors.size()); break;
  }
  if (c.sliding_window > 0) std::printf("sliding window %lld\n", (long long)c.sliding_window);
  std::printf("tokenizer %lld tokens, chat template '%s'\n", (long long)m.tokenizer->vocab_size(),
              detect_chat_template(m.chat_template_source).c_str());
  std::map<std::string, std::pair<int, size_t>> by_type;
  size_t total = 0;
  int64_t params = 0;
  for (const auto& t : m.tensors) {
    auto& e = by_type[std::string(storage_name(t.type))];
    e.first++;
    e.second += t.nbytes;
    total += t.nbytes;
    params += t.numel();
  }
  std::printf("tensors %zu, parameters %.1f M, weights %.1f MiB:", m.tensors.size(), params / 1e6, total / 1048576.0);
  for (const auto& [type, e] : by_type) std::printf("  %s x%d (%.1f MiB)", type.c_str(), e.first, e.second / 1048576.0);
  std::printf("\n");
  const int64_t ctx = std::min<int64_t>(o.ctx_size, c.max_position_embeddings);
  const double kv_mib = 2.0 * c.num_layers * ctx * c.kv_size() * sizeof(float) / 1048576.0;
  std::printf("memory on the CPU: weights %.1f MiB (mapped, as stored), KV cache %.1f MiB at %lld tokens (fp32)\n",
              m.weights.matrix_bytes() / 1048576.0, kv_mib, (long long)ctx);
  if (tensors) {
    std::printf("\n%-48s %-6s %-20s %10s\n", "name", "type", "shape", "bytes");
    for (const auto& t : m.tensors)
      std::printf("%-48s %-6s %-20s %10zu\n", t.name.c_str(), std::string(storage_name(t.type)).c_str(),
                  t.shape_string().c_str(), t.nbytes);
  }
}

}  // namespace turbine::cli
