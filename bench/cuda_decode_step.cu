// The whole decode step of the CUDA engine (CudaTransformer) at SmolLM2-135M and Llama-3-8B shapes,
// with random fp16 weights made here on the host, for each set of decode folds (DecodeFusion) from
// none (the unfused chain) to all. Batch-1 decode of a small model is bound by its chain of
// dependent kernels rather than by bytes, so each fold is measured on its own.
//
// Per configuration: a 128-token prompt is prefilled, a few steps warm up (and capture the graph),
// then the step is timed two ways: end to end (decode_batch from the host: step upload, graph,
// logits back to the host as fp32) over 200 tokens, and the graph alone (200 replays back to back,
// CUDA events). Reported: tokens/s, us per step, and the fraction of the floor, which is (weight
// bytes + KV bytes read) / the device-to-device copy ceiling measured at start-up (bytes read +
// written per second; cuda_bench_common.cuh). Each configuration's logits after 4 fixed steps are compared with the
// unfused chain's (relative error): the folds change rounding only.
//   bench_cuda_decode_step [smollm2|llama3|w4|smollm2-w4|llama3-w4|smollm2-w4-head|llama3-w4-head|all] [LABEL]
//   not Google Benchmark: one table each (-head: the LM head rounded to 4 bits too);
//   LABEL: the W4 tables time only the configurations whose label starts with it (or with one of
//   several prefixes separated by "|"), batch 1
//   (tools/gpu_step_profile.sh: "engine default", "norm stats")
// Compiled with -DTURBINE_DECODE_BENCH_HEAD against an older include tree (one without DecodeFusion),
// it times that engine end to end only: the "before" of a change to the engine.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <turbine/turbine.cuh>
#include <vector>

#include "cuda_bench_common.cuh"

using namespace turbine;

namespace {

std::string g_only;  // argv[2]: the W4 configurations whose label starts with it (or with one of
                     // several prefixes separated by '|'), batch 1 only
bool selected(const std::string& label) {
  if (g_only.empty()) return true;
  for (size_t b = 0;;) {
    const size_t e = g_only.find('|', b);
    if (label.rfind(g_only.substr(b, e == std::string::npos ? e : e - b), 0) == 0) return true;
    if (e == std::string::npos) return false;
    b = e + 1;
  }
}

// ---- random fp16 weights on the host --------------------------------------------------------------

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// n fp16 values uniform in [-a, a) (standard deviation a / sqrt(3)), from a 4096-entry table,
/// filled by all cores.
std::shared_ptr<std::vector<uint16_t>> random_f16(size_t n, float a, uint64_t seed) {
  auto out = std::make_shared<std::vector<uint16_t>>(n);
  uint16_t table[4096];
  for (int i = 0; i < 4096; ++i) table[i] = f32_to_fp16(a * (2.f * (float(i) + 0.5f) / 4096.f - 1.f));
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  const size_t per = (n + threads - 1) / threads;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      uint64_t s = seed * 1000003ull + t;
      uint16_t* p = out->data();
      for (size_t i = t * per; i < std::min(n, (t + 1) * per); i += 4) {
        const uint64_t r = splitmix64(s);
        for (size_t j = 0; j < 4 && i + j < n; ++j) p[i + j] = table[(r >> (16 * j)) & 4095];
      }
    });
  for (auto& th : pool) th.join();
  return out;
}

/// A model of config c with random weights: every matrix of a given column count views one random
/// pool at a small offset (the device copies are separate buffers all the same, so nothing is shared
/// in L2), scaled so activations stay O(1).
ModelWeights random_model(const ModelConfig& c) {
  ModelWeights w;
  w.config = c;
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size, q = c.q_size(), kv = c.kv_size();
  auto pool_for = [&](int64_t cols, int64_t rows, uint64_t seed) {
    auto p = random_f16(size_t(rows * cols) + 4096, std::sqrt(3.f / float(cols)), seed);  // + room for offsets
    w.keep_alive.push_back(p);
    return reinterpret_cast<const std::byte*>(p->data());
  };
  const int64_t hidden_rows = std::max({c.vocab_size, inter, q + 2 * kv});
  const std::byte* by_hidden = pool_for(hidden, hidden_rows, 1);
  const std::byte* by_inter = pool_for(inter, hidden, 2);
  const std::byte* by_q = q == hidden ? by_hidden : pool_for(q, hidden, 3);
  auto m = [](int64_t rows, int64_t cols, const std::byte* data) { return WeightMatrix{StorageType::F16, rows, cols, data}; };
  auto norm = [&](uint64_t seed) {
    std::vector<float> g(static_cast<size_t>(hidden));
    uint64_t s = seed;
    for (auto& x : g) x = 0.8f + 0.4f * float(splitmix64(s) >> 40) / float(1 << 24);
    return g;
  };
  w.embed = m(c.vocab_size, hidden, by_hidden);
  w.lm_head = c.tie_word_embeddings ? w.embed : m(c.vocab_size, hidden, by_hidden + 2 * 64);
  w.final_norm = norm(7);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerWeights L;
    L.attn_norm = norm(100 + l);
    L.mlp_norm = norm(200 + l);
    L.wq = m(q, hidden, by_hidden);
    L.wk = m(kv, hidden, by_hidden + 2 * 8 * (l % 64 + 1));
    L.wv = m(kv, hidden, by_hidden + 2 * 16 * (l % 64 + 1));
    L.wo = m(hidden, q, by_q);
    L.w_gate = m(inter, hidden, by_hidden);
    L.w_up = m(inter, hidden, by_hidden + 2 * 8);
    L.w_down = m(hidden, inter, by_inter);
    w.layers.push_back(std::move(L));
  }
  return w;
}

ModelConfig shape(const std::string& name) {
  ModelConfig c;
  c.arch = Architecture::Llama;
  c.rms_norm_eps = 1e-5f;
  if (name == "smollm2") {  // SmolLM2-135M
    c.vocab_size = 49152, c.hidden_size = 576, c.intermediate_size = 1536, c.num_layers = 30;
    c.num_heads = 9, c.num_kv_heads = 3, c.head_dim = 64, c.rope_theta = 100000.f, c.tie_word_embeddings = true;
  } else {  // Llama-3-8B
    c.vocab_size = 128256, c.hidden_size = 4096, c.intermediate_size = 14336, c.num_layers = 32;
    c.num_heads = 32, c.num_kv_heads = 8, c.head_dim = 128, c.rope_theta = 500000.f, c.tie_word_embeddings = false;
  }
  c.max_position_embeddings = 4096;
  return c;
}

// ---- one table per (shape, precision) -----------------------------------------------------------

#ifndef TURBINE_DECODE_BENCH_HEAD
template <class Model>
using FusionOf = typename Model::DecodeFusion;

template <class Model>
std::vector<std::pair<std::string, FusionOf<Model>>> configurations() {
  using F = FusionOf<Model>;
  std::vector<std::pair<std::string, F>> out;
  F f = F::none();
  out.emplace_back("unfused (before)", f);
  f.host_io = true;
  out.emplace_back("+ fp32 logits, pinned io", f);
  f.silu = true;
  out.emplace_back("+ silu*up in gate/up GEMV", f);
  f.attention = true;
  f.attention_min_tiles = 1;
  out.emplace_back("+ attention merge folded", f);
  f.norm = true;
  out.emplace_back("+ norms in GEMV prologues", f);
  f.rope = true;
  out.emplace_back("+ rope/KV store in QKV", f);
  f.attention_min_tiles = 4;
  out.emplace_back("  (>= 4 tiles per split)", f);
  f.attention_min_tiles = 8;
  out.emplace_back("  (>= 8 tiles per split)", f);
  f.norm_stats = true;
  out.emplace_back("+ norms from tile sums", f);
  return out;  // the engine's default (for_model) is appended by run_shape
}

#endif

double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += double(got[i] - want[i]) * (got[i] - want[i]);
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / den);
}

/// Four sequences decoded together: prefill each with `prompt`, `warm` batched steps (which capture
/// the graph), then the mean graph time of a step over `steps` replays, in us.
template <class Model>
double batch4_graph_us(Model& model, const std::vector<int32_t>& prompt, int warm, int steps) {
  const ModelConfig& c = model.config();
  std::vector<typename Model::Cache> caches;
  for (int i = 0; i < 4; ++i) caches.push_back(model.new_cache(c.max_position_embeddings));
  std::vector<typename Model::Cache*> ptrs;
  std::vector<float> logits;
  for (auto& x : caches) {
    model.forward(x, prompt, logits);
    ptrs.push_back(&x);
  }
  std::vector<int32_t> next(4, 11);
  std::vector<float> batch_logits(4 * c.vocab_size);
  for (int i = 0; i < warm; ++i) model.decode_batch(ptrs, next, batch_logits.data());
  return 1e3 * model.time_decode_graph(ptrs, steps);
}

template <class P>
void run_shape(const std::string& name, double ceiling) {
  using Model = Llama<P, quant::None, kv::Same, Cuda>;
  const ModelConfig c = shape(name);
  const auto t0 = std::chrono::steady_clock::now();
  Model model(random_model(c));
  const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  constexpr int kPrompt = 128, kWarm = 8, kSteps = 200, kCheck = 4;
  std::vector<int32_t> prompt(kPrompt);
  for (int i = 0; i < kPrompt; ++i) prompt[i] = int32_t((i * 7919 + 13) % c.vocab_size);
  auto token = [&](int i) { return int32_t((i * 104729 + 7) % c.vocab_size); };
  const double weight_bytes = double(model.device_weight_bytes());
  const int64_t len = kPrompt + kWarm + kSteps;  // cache length while the graph is timed
  const double kv_bytes = 2.0 * c.num_layers * double(len) * c.kv_size() * 2;
  const double floor_us = (weight_bytes + kv_bytes) / ceiling * 1e6;
  std::printf("\n%s %s: weights %.1f MB, KV read %.1f MB at %lld positions, floor %.1f us/token (%.0f tok/s); setup %.1f s\n",
              name.c_str(), std::string(P::name).c_str(), weight_bytes / 1e6, kv_bytes / 1e6, static_cast<long long>(len), floor_us,
              1e6 / floor_us, setup_s);
  std::printf("  %-28s %10s %10s %10s %10s %8s %12s\n", "decode folds", "e2e tok/s", "e2e us", "graph tok/s", "graph us",
              "floor %", "err vs base");
  std::vector<float> logits, base;
#ifdef TURBINE_DECODE_BENCH_HEAD
  for (const std::string label : {"engine as it was (HEAD)"}) {
#else
  auto configs = configurations<Model>();
  configs.emplace_back("engine default (for_model)", FusionOf<Model>::for_model(c));
  for (const auto& [label, fusion] : configs) {
    model.set_decode_fusion(fusion);
#endif
    // Agreement with the unfused chain: logits after kCheck fixed steps.
    {
      auto cache = model.new_cache(c.max_position_embeddings);
      model.forward(cache, prompt, logits);
      for (int i = 0; i < kCheck; ++i) model.forward(cache, std::span<const int32_t>(&prompt[i], 1), logits);
    }
    const double err = base.empty() ? 0.0 : rel_error(logits, base);
    if (base.empty()) base = logits;
    auto cache = model.new_cache(c.max_position_embeddings);
    model.forward(cache, prompt, logits);
    for (int i = 0; i < kWarm; ++i) {
      const int32_t t = token(i);
      model.forward(cache, std::span<const int32_t>(&t, 1), logits);
    }
    const auto e0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kSteps; ++i) {
      const int32_t t = token(kWarm + i);
      model.forward(cache, std::span<const int32_t>(&t, 1), logits);
    }
    const double e2e_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - e0).count() / kSteps;
#ifdef TURBINE_DECODE_BENCH_HEAD
    std::printf("  %-28s %10.0f %10.1f %10s %10s %8s %12.2e\n", label.c_str(), 1e6 / e2e_us, e2e_us, "-", "-", "-", err);
  }
#else
    decltype(&cache) one[1] = {&cache};
    model.time_decode_graph(std::span<decltype(&cache) const>(one, 1), 20);  // warm
    const double graph_us = 1e3 * model.time_decode_graph(std::span<decltype(&cache) const>(one, 1), kSteps);
    std::printf("  %-28s %10.0f %10.1f %10.0f %10.1f %7.1f%% %12.2e\n", label.c_str(), 1e6 / e2e_us, e2e_us,
                1e6 / graph_us, graph_us, 100.0 * floor_us / graph_us, err);
    std::fflush(stdout);
  }
  // Four sequences at once (batched decode), unfused and the engine's default: graph time per step.
  for (bool fused : {false, true}) {
    model.set_decode_fusion(fused ? FusionOf<Model>::for_model(c) : FusionOf<Model>::none());
    const double graph_us = batch4_graph_us(model, prompt, kWarm, kSteps);
    std::printf("  batch 4, %-19s %10s %10s %10.0f %10.1f   (%.0f tokens/s over the 4 sequences)\n",
                fused ? "engine default" : "unfused", "", "", 1e6 / graph_us, graph_us, 4e6 / graph_us);
  }
#endif
}

/// 4-bit weights (quant::Rtn<4, G>, rounded from the random weights at load): batch 1 and 4, the
/// floor counted on the bytes the W4 model streams (packed weights, scales, f16 embedding/LM head).
template <int G>
void run_w4(const std::string& name, double ceiling, bool int4_head = false) {
  using Model = Llama<f16, quant::Rtn<4, G>, kv::Same, Cuda>;
  const ModelConfig c = shape(name);
  const auto t0 = std::chrono::steady_clock::now();
  // int4_head: the LM head rounded to 4 bits too (quantize_lm_head_int4), run on the W4 GEMV
#ifdef TURBINE_DECODE_BENCH_HEAD
  check(!int4_head, "the 4-bit LM head is not in the HEAD build");
  Model model(random_model(c));
#else
  Model model(int4_head ? quantize_lm_head_int4(random_model(c), lm_head_group(c.hidden_size)) : random_model(c));
#endif
  const double setup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  constexpr int kPrompt = 128, kWarm = 8, kSteps = 200;
  std::vector<int32_t> prompt(kPrompt);
  for (int i = 0; i < kPrompt; ++i) prompt[i] = int32_t((i * 7919 + 13) % c.vocab_size);
  const double weight_bytes = double(model.device_weight_bytes());
  const int64_t len = kPrompt + kWarm + kSteps;
  // The LM head is read once per step; the embedding only one row.
  const double embed_bytes = c.tie_word_embeddings ? 0.0 : double(c.vocab_size) * c.hidden_size * 2;
  const double step_bytes = weight_bytes - embed_bytes + 2.0 * c.num_layers * double(len) * c.kv_size() * 2;
  const double floor_us = step_bytes / ceiling * 1e6;
  std::printf("\n%s W4A16 g%d (f16)%s: device weights %.1f MB, bytes per step %.1f MB, floor %.1f us/token; setup %.1f s\n",
              name.c_str(), G, int4_head ? ", 4-bit LM head" : "", weight_bytes / 1e6, step_bytes / 1e6, floor_us, setup_s);
  // The unfused chain (separate norm, rope and activation kernels around the W4 GEMV), the engine's
  // default folds, and every fold (norm prologues and the rotary/KV-store epilogue on the 4-bit
  // stream too); logits after a few steps against the unfused chain's.
#ifdef TURBINE_DECODE_BENCH_HEAD
  struct F {};
  const std::pair<const char*, F> configs[] = {{"engine as it was (HEAD)", F{}}};
  auto set_fusion = [](Model&, const F&) {};
#else
  using F = FusionOf<Model>;
  F all;
  all.attention_min_tiles = 8;
  F stats = F::for_model(c);
  stats.norm = stats.rope = stats.norm_stats = true;
  // Batch-1 attention at 136-336 positions with >= 8 tiles a split is 1 split x 8 KV heads = 8
  // blocks, each walking up to 6 tiles in turn (9.8 us a layer under ncu, 2026-12-04): more splits.
  F split1 = F::for_model(c), split2 = F::for_model(c);
  split1.attention_min_tiles = 1;
  split2.attention_min_tiles = 2;
  F lanes = F::for_model(c);  // the W4 GEMVs' x read by the lanes (the default before 2026-12-06)
  lanes.w4.x = turbine::cuda::W4X::kLanes;
  F rope_epi = F::for_model(c);  // the rotary/KV-store epilogue on x normalized by the norm kernels
  rope_epi.rope = true;
  F attn4 = F::for_model(c);  // the decode attention's 4-warp blocks (one tile at a time; before 2026-12-06)
  attn4.attention_warps = 4;
  // The kernel chain that the persistent kernel (the default at batch 1 for 4-bit models) replaced;
  // every variant below is of the chain.
  F chain = F::for_model(c);
  F chain_stream = F::for_model(c);  // every W4 GEMV on the kStream kernel (the default before 2026-12-08)
  chain_stream.w4.kernel = turbine::cuda::W4Kernel::kStream;
  F chain_ring = F::for_model(c);  // every W4 GEMV on the ring kernel (o, qkv and down too)
  chain_ring.w4.kernel = turbine::cuda::W4Kernel::kRing;
  for (F* f : {&chain, &chain_stream, &chain_ring, &all, &stats, &split1, &split2, &lanes, &rope_epi, &attn4}) f->persistent = false;
  F persistent = F::for_model(c), l2_8 = F::for_model(c), l2_16 = F::for_model(c), l2_32 = F::for_model(c);
  persistent.persistent = l2_8.persistent = l2_16.persistent = l2_32.persistent = true;
  l2_8.persistent_prefetch = 8;  // the persistent kernel asking L2 for chunks past its rings during attention
  l2_16.persistent_prefetch = 16;
  l2_32.persistent_prefetch = 32;
  const std::pair<const char*, F> configs[] = {{"unfused", F::none()},
                                               {"engine default (for_model)", F::for_model(c)},
                                               {"persistent kernel", persistent},
                                               {"persistent, L2 prefetch 8", l2_8},
                                               {"persistent, L2 prefetch 16", l2_16},
                                               {"persistent, L2 prefetch 32", l2_32},
                                               {"kernel chain (no persistent)", chain},
                                               {"kernel chain, no ring GEMV", chain_stream},
                                               {"kernel chain, ring GEMVs only", chain_ring},
                                               {"default, x by the lanes", lanes},
                                               {"all folds", all},
                                               {"norm stats (tile sums)", stats},
                                               {"default + rope epilogue", rope_epi},
                                               {"default, 4-warp attention", attn4},
                                               {"default, >= 1 tile a split", split1},
                                               {"default, >= 2 tiles a split", split2}};
  auto set_fusion = [](Model& m, const F& f) { m.set_decode_fusion(f); };
#endif
  std::printf("  %-28s %10s %10s %10s %10s %8s %12s\n", "decode folds", "e2e tok/s", "e2e us", "graph tok/s", "graph us",
              "floor %", "err vs first");
  std::vector<float> logits, base;
  bool knockouts_done = false;  // for the first selected configuration only
  for (const auto& [label, fusion] : configs) {
    if (!selected(label)) continue;
    set_fusion(model, fusion);
    auto cache = model.new_cache(c.max_position_embeddings);
    model.forward(cache, prompt, logits);
    for (int i = 0; i < kWarm; ++i) {
      const int32_t t = int32_t((i * 104729 + 7) % c.vocab_size);
      model.forward(cache, std::span<const int32_t>(&t, 1), logits);
    }
    const double err = base.empty() ? 0.0 : rel_error(logits, base);
    if (base.empty()) base = logits;
    const auto e0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kSteps; ++i) {
      const int32_t t = int32_t(((kWarm + i) * 104729 + 7) % c.vocab_size);
      model.forward(cache, std::span<const int32_t>(&t, 1), logits);
    }
    const double e2e_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - e0).count() / kSteps;
    decltype(&cache) one[1] = {&cache};
    model.time_decode_graph(std::span<decltype(&cache) const>(one, 1), 20);
    const double graph_us = 1e3 * model.time_decode_graph(std::span<decltype(&cache) const>(one, 1), kSteps);
    std::printf("  %-28s %10.0f %10.1f %10.0f %10.1f %7.1f%% %12.2e\n", label, 1e6 / e2e_us, e2e_us, 1e6 / graph_us,
                graph_us, 100.0 * floor_us / graph_us, err);
#ifndef TURBINE_DECODE_BENCH_HEAD
    // The persistent kernel's phases, from its own clock record: each projection's packed bytes
    // (codes + {scale, zero} per group) over its phase time (up to the barrier after it).
    if (const auto ph = model.persistent_phase_us(cache, 50); !ph.empty()) {
      const double hd = double(c.head_dim), kv = double(c.num_kv_heads), h = double(c.num_heads);
      const double hid = double(c.hidden_size), inter = double(c.intermediate_size);
      auto packed = [&](double n, double k) { return n * k / 2 + n * (k / G) * 4; };
      const double bytes[5] = {packed((h + 2 * kv) * hd, hid), 0.0, packed(hid, h * hd), packed(2 * inter, hid),
                               packed(hid, inter)};
      const char* names[5] = {"QKV (+ norm, rotary, KV store)", "attention", "O (+ split merge, residual)",
                              "gate/up (+ norm, silu)", "down (+ residual)"};
      std::printf("    persistent kernel %.1f us a step; per layer, phase up to its barrier:\n", ph[5]);
      for (int k = 0; k < 5; ++k) {
        if (bytes[k] > 0)
          std::printf("      %-32s %7.2f us  %7.1f MB  %7.0f GB/s  %5.1f%% of the copy ceiling\n", names[k], ph[k],
                      bytes[k] / 1e6, bytes[k] / ph[k] / 1e3, 100.0 * bytes[k] / ph[k] / 1e3 / (ceiling / 1e9));
        else
          std::printf("      %-32s %7.2f us\n", names[k], ph[k]);
      }
    }
    if (knockouts_done) continue;
    // What each kind of kernel costs this chain: the step's graph with those kernel nodes disabled
    // (timing only: the logits of such a step are meaningless).
    knockouts_done = true;
    const std::pair<const char*, const char*> kinds[] = {{"rms_norm_kernel", "add + RMSNorm kernels"},
                                                         {"rope_qkv_kernel", "rotary + KV store kernels"},
                                                         {"decode_", "decode attention kernels"},
                                                         {"rms_norm_kernel|rope_qkv_kernel|decode_", "norms, rotary, attention"},
                                                         {"GemvGateUpSilu", "gate/up GEMVs"},
                                                         {"gemv_w4_stream_kernel|gemv_w4_ring_kernel", "W4 GEMVs (all)"}};
    for (const auto& [part, what] : kinds) {
      int off = 0;  // (time_decode_graph_without replays the graph once before it times it)
      const double us = 1e3 * model.time_decode_graph_without(std::span<decltype(&cache) const>(one, 1), kSteps, part, &off);
      std::printf("    without the %-26s %4d nodes off: %8.1f us a step, %7.1f us less\n", what, off, us, graph_us - us);
    }
#endif
  }
  for (const auto& [label, fusion] : configs) {
    if (!g_only.empty()) break;
    set_fusion(model, fusion);
    const double b4_us = batch4_graph_us(model, prompt, kWarm, kSteps);
    std::printf("  batch 4, %-19s %10s %10s %10.0f %10.1f   (%.0f tokens/s over the 4 sequences)\n", label, "", "",
                1e6 / b4_us, b4_us, 4e6 / b4_us);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines survive a crash when the output is a file
  const std::string which = argc > 1 ? argv[1] : "all";
  if (argc > 2) g_only = argv[2];
  if (turbine::cuda::device_count() == 0) {
    std::printf("[skipped] no CUDA device\n");
    return 0;
  }
  try {
    cudaDeviceProp prop{};
    TURBINE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const bench::MemoryCeilings mem = bench::measure_memory_ceilings();
    const double ceiling = mem.copy_gbps * 1e9;  // bytes per second
    std::printf("device: %s, copy ceiling %.2f TB/s (read + write; the larger of cudaMemcpy %.2f and a copy kernel %.2f)\n",
                prop.name, ceiling / 1e12, mem.memcpy_gbps / 1e3, mem.kcopy_gbps / 1e3);
    if (which == "all" || which == "smollm2") {
      run_shape<f16>("smollm2", ceiling);
      run_shape<bf16>("smollm2", ceiling);
    }
    if (which == "all" || which == "llama3") run_shape<f16>("llama3", ceiling);
    if (which == "all" || which == "w4" || which == "smollm2-w4") run_w4<64>("smollm2", ceiling);
    if (which == "all" || which == "w4" || which == "llama3-w4") run_w4<128>("llama3", ceiling);
    if (which == "all" || which == "w4" || which == "smollm2-w4-head") run_w4<64>("smollm2", ceiling, true);
    if (which == "all" || which == "w4" || which == "llama3-w4-head") run_w4<128>("llama3", ceiling, true);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
