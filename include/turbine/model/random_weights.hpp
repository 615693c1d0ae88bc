#pragma once
// Random-init models of known shapes, for benchmarks that need no model file: `model_shape(name)`
// gives the config of a published model and `random_weights(config, type, seed)` fills every
// matrix with uniform values of standard deviation 1/sqrt(cols) (so activations stay O(1) through
// the layers) and every norm with values near 1. Speed is the point: an 8B model is 16 GB, so
// the matrices are written as fp16/bf16 bits straight from a splitmix64 stream through a 4096-entry
// table, in chunks spread over all cores. A chunk's values depend only on (seed, matrix, chunk),
// never on the thread count.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/weight_matrix.hpp"
#include "config.hpp"
#include "weights.hpp"

namespace turbine {

/// The shapes `model_shape` knows, in the order its error lists them.
inline constexpr std::string_view kRandomShapeNames[] = {"smollm2-135m", "internlm2-1.8b", "llama2-7b", "llama3-8b"};

/// The config of a published model by short name (sizes only: no tokenizer, no rope scaling).
inline ModelConfig model_shape(std::string_view name) {
  ModelConfig c;
  c.rms_norm_eps = 1e-5f;
  auto set = [&](Architecture arch, int64_t hidden, int64_t inter, int64_t layers, int64_t heads, int64_t kv_heads,
                 int64_t head_dim, int64_t vocab, int64_t ctx, float theta, bool tied) {
    c.arch = arch;
    c.hidden_size = hidden;
    c.intermediate_size = inter;
    c.num_layers = layers;
    c.num_heads = heads;
    c.num_kv_heads = kv_heads;
    c.head_dim = head_dim;
    c.vocab_size = vocab;
    c.max_position_embeddings = ctx;
    c.rope_theta = theta;
    c.tie_word_embeddings = tied;
  };
  if (name == "smollm2-135m") set(Architecture::Llama, 576, 1536, 30, 9, 3, 64, 49152, 8192, 100000.0f, true);
  else if (name == "internlm2-1.8b") set(Architecture::InternLM2, 2048, 8192, 24, 16, 8, 128, 92544, 32768, 1e6f, false);
  else if (name == "llama2-7b") set(Architecture::Llama, 4096, 11008, 32, 32, 32, 128, 32000, 4096, 1e4f, false);
  else if (name == "llama3-8b") set(Architecture::Llama, 4096, 14336, 32, 32, 8, 128, 128256, 8192, 5e5f, false);
  else {
    std::string names;
    for (std::string_view n : kRandomShapeNames) names += (names.empty() ? "" : ", ") + std::string(n);
    fail("unknown model shape '", name, "' (known: ", names, ")");
  }
  return c;
}

namespace detail {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// One contiguous run of 16-bit values to fill: uniform on [center - half_width, center + half_width].
struct FillJob {
  uint16_t* dst;
  size_t count;
  float center, half_width;
  uint64_t seed;
};

/// Fills a run through a 4096-level table: five 12-bit indices per 64-bit draw.
inline void run_fill_job(const FillJob& j, StorageType type) {
  uint16_t table[4096];
  for (int i = 0; i < 4096; ++i) {
    const float v = j.center + j.half_width * ((static_cast<float>(i) + 0.5f) / 2048.0f - 1.0f);
    table[i] = type == StorageType::BF16 ? f32_to_bf16(v) : f32_to_fp16(v);
  }
  uint64_t state = j.seed;
  size_t i = 0;
  for (; i + 5 <= j.count; i += 5) {
    const uint64_t r = splitmix64(state);
    j.dst[i] = table[r & 4095];
    j.dst[i + 1] = table[(r >> 12) & 4095];
    j.dst[i + 2] = table[(r >> 24) & 4095];
    j.dst[i + 3] = table[(r >> 36) & 4095];
    j.dst[i + 4] = table[(r >> 48) & 4095];
  }
  for (uint64_t r = splitmix64(state); i < j.count; ++i, r >>= 12) j.dst[i] = table[r & 4095];
}

/// Runs the jobs on all cores (chunks are taken from a shared counter).
inline void run_fill_jobs(const std::vector<FillJob>& jobs, StorageType type) {
  const unsigned threads = std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(), 64));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < jobs.size();) run_fill_job(jobs[k], type);
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

/// Splits [dst, dst + count) into jobs of at most 4M values; `stream` separates matrices.
inline void add_fill_jobs(std::vector<FillJob>& jobs, uint16_t* dst, size_t count, float center, float half_width,
                          uint64_t seed, uint64_t stream) {
  constexpr size_t kChunk = size_t{1} << 22;
  uint64_t s = seed ^ (stream * 0xd1b54a32d192ed03ull);
  const uint64_t base = splitmix64(s);
  for (size_t off = 0, k = 0; off < count; off += kChunk, ++k) {
    uint64_t cs = base + k * 0x632be59bd9b4e019ull;
    jobs.push_back({dst + off, std::min(kChunk, count - off), center, half_width, splitmix64(cs)});
  }
}

}  // namespace detail

/// Fills `count` fp16 or bf16 values (as bits) uniformly on [-half_width, half_width], on all cores.
inline void fill_random_half(uint16_t* dst, size_t count, StorageType type, float half_width, uint64_t seed) {
  check(type == StorageType::F16 || type == StorageType::BF16, "fill_random_half: type ", storage_name(type),
        " (supported: F16, BF16)");
  std::vector<detail::FillJob> jobs;
  detail::add_fill_jobs(jobs, dst, count, 0.0f, half_width, seed, 0);
  detail::run_fill_jobs(jobs, type);
}

/// Every weight of a model of config `c`, random, stored as `type` (F16 or BF16) in buffers that
/// the returned ModelWeights owns. The same (config, type, seed) gives the same weights.
inline ModelWeights random_weights(const ModelConfig& c, StorageType type, uint64_t seed) {
  check(type == StorageType::F16 || type == StorageType::BF16, "random_weights: storage type ", storage_name(type),
        " (supported: F16, BF16)");
  check(c.hidden_size > 0 && c.intermediate_size > 0 && c.num_layers > 0 && c.num_heads > 0 && c.num_kv_heads > 0 &&
            c.head_dim > 0 && c.vocab_size > 0,
        "random_weights: the config has a zero size");
  ModelWeights w;
  w.config = c;
  std::vector<detail::FillJob> jobs;
  uint64_t stream = 1;
  // Allocated uninitialized (no single-threaded memset of 16 GB): the fill jobs touch every page.
  auto matrix = [&](int64_t rows, int64_t cols) {
    const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
    std::shared_ptr<uint16_t[]> buf(new uint16_t[n]);
    const float half_width = std::sqrt(3.0f / static_cast<float>(cols));  // std 1/sqrt(cols)
    detail::add_fill_jobs(jobs, buf.get(), n, 0.0f, half_width, seed, stream++);
    w.keep_alive.push_back(std::shared_ptr<const void>(buf, buf.get()));
    return WeightMatrix{type, rows, cols, reinterpret_cast<const std::byte*>(buf.get())};
  };
  uint64_t norm_state = seed ^ 0x5851f42d4c957f2dull;
  auto norm = [&](int64_t n) {  // ~1: uniform on [0.95, 1.05]
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = 0.95f + 0.1f * static_cast<float>(detail::splitmix64(norm_state) >> 40) / 16777216.0f;
    return v;
  };
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size;
  w.embed = matrix(c.vocab_size, hidden);
  w.lm_head = c.tie_word_embeddings ? w.embed : matrix(c.vocab_size, hidden);
  w.final_norm = norm(hidden);
  w.layers.resize(static_cast<size_t>(c.num_layers));
  for (LayerWeights& l : w.layers) {
    l.attn_norm = norm(hidden);
    l.mlp_norm = norm(hidden);
    l.wq = matrix(c.q_size(), hidden);
    l.wk = matrix(c.kv_size(), hidden);
    l.wv = matrix(c.kv_size(), hidden);
    l.wo = matrix(hidden, c.q_size());
    l.w_gate = matrix(inter, hidden);
    l.w_up = matrix(inter, hidden);
    l.w_down = matrix(hidden, inter);
  }
  detail::run_fill_jobs(jobs, type);
  return w;
}

}  // namespace turbine
