// GPU sampling (argmax_rows, GpuSampler) against the CPU Sampler (engine/sampler.hpp): exact ids for
// greedy rows, and for sampled rows the empirical distribution over many draws against the CPU's
// final distribution (after top-k, top-p and min-p) by total variation distance.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <turbine/backend/cuda/sampling.cuh>
#include <turbine/engine/sampler.hpp>
#include <vector>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;
namespace tc = turbine::cuda;
using tc::DeviceBuffer;
using tc::SamplingParams;

namespace {

// ---- host values of a logits type ---------------------------------------------------------------

template <class T>
struct Elem {
  static constexpr const char* name = HalfTraits<T>::name;
  static float round(float f) { return HalfTraits<T>::widen(HalfTraits<T>::round(f)); }
  static void write(T* dst, const float* src, size_t n) {
    std::vector<uint16_t> bits(n);
    for (size_t i = 0; i < n; ++i) bits[i] = HalfTraits<T>::round(src[i]);
    TURBINE_CUDA_CHECK(cudaMemcpy(dst, bits.data(), n * 2, cudaMemcpyHostToDevice));
  }
};
template <>
struct Elem<float> {
  static constexpr const char* name = "f32";
  static float round(float f) { return f; }
  static void write(float* dst, const float* src, size_t n) {
    TURBINE_CUDA_CHECK(cudaMemcpy(dst, src, n * 4, cudaMemcpyHostToDevice));
  }
};

template <class T>
std::vector<float> rounded(std::vector<float> v) {
  for (auto& x : v) x = Elem<T>::round(x);
  return v;
}

std::vector<int32_t> download_ids(const DeviceBuffer<int32_t>& d) {
  std::vector<int32_t> v(d.size());
  TURBINE_CUDA_CHECK(cudaMemcpy(v.data(), d.data(), d.bytes(), cudaMemcpyDeviceToHost));
  return v;
}

void poison_ids(DeviceBuffer<int32_t>& d) { TURBINE_CUDA_CHECK(cudaMemset(d.data(), 0xFF, d.bytes())); }

// ---- the CPU's final distribution (mirrors Sampler::sample step by step) ----------------------

struct CpuList {
  std::vector<int32_t> idx;  // top-k candidates in the CPU's order
  std::vector<float> probs;  // their softmax
  size_t keep_p = 0;         // after top-p
  size_t keep = 0;           // after min-p
};

CpuList cpu_list(std::vector<float> logits, const std::vector<int32_t>& history, const GenerationConfig& cfg) {
  if (cfg.repetition_penalty != 1.0f) Sampler::apply_repetition_penalty(logits, history, cfg.repetition_penalty);
  CpuList L;
  const float inv_t = 1.0f / cfg.temperature;
  const int64_t n = static_cast<int64_t>(logits.size());
  const int64_t k = cfg.top_k > 0 ? std::min<int64_t>(cfg.top_k, n) : n;
  L.idx.resize(size_t(n));
  std::iota(L.idx.begin(), L.idx.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(L.idx.begin(), L.idx.begin() + k, L.idx.end(), by_logit);
  L.idx.resize(size_t(k));
  L.probs.resize(L.idx.size());
  const float mx = logits[L.idx[0]];
  double sum = 0.0;
  for (size_t i = 0; i < L.idx.size(); ++i) sum += L.probs[i] = std::exp((logits[L.idx[i]] - mx) * inv_t);
  for (auto& p : L.probs) p = static_cast<float>(p / sum);
  size_t keep = L.idx.size();
  if (cfg.top_p < 1.0f) {
    double acc = 0.0;
    for (size_t i = 0; i < keep; ++i) {
      acc += L.probs[i];
      if (acc >= cfg.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  L.keep_p = keep;
  if (cfg.min_p > 0.0f) {
    const float floor = cfg.min_p * L.probs[0];
    size_t i = 1;
    while (i < keep && L.probs[i] >= floor) ++i;
    keep = i;
  }
  L.keep = keep;
  return L;
}

// Moves top_p and min_p to the middle of the gap at their cut, so that rounding differences between
// two correct implementations cannot move the cut by one token.
void snap_cuts(const std::vector<float>& logits, const std::vector<int32_t>& history, GenerationConfig& cfg) {
  if (cfg.top_p < 1.0f) {
    const CpuList L = cpu_list(logits, history, cfg);
    double below = 0.0, at = 0.0;
    for (size_t i = 0; i < L.keep_p; ++i) below = at, at += L.probs[i];
    if (L.keep_p < L.idx.size()) cfg.top_p = static_cast<float>(0.5 * (below + at));
  }
  if (cfg.min_p > 0.0f) {
    const CpuList L = cpu_list(logits, history, cfg);
    const double p0 = L.probs[0];
    if (L.keep < L.keep_p)  // the cut lies between keep - 1 and keep
      cfg.min_p = static_cast<float>(0.5 * (L.probs[L.keep - 1] / p0 + L.probs[L.keep] / p0));
    else
      cfg.min_p = static_cast<float>(0.5 * L.probs[L.keep - 1] / p0);
  }
}

std::map<int32_t, double> cpu_distribution(const std::vector<float>& logits, const std::vector<int32_t>& history,
                                           const GenerationConfig& cfg) {
  const CpuList L = cpu_list(logits, history, cfg);
  double s = 0.0;
  for (size_t i = 0; i < L.keep; ++i) s += L.probs[i];
  std::map<int32_t, double> d;
  for (size_t i = 0; i < L.keep; ++i) d[L.idx[i]] = L.probs[i] / s;
  return d;
}

SamplingParams to_params(const GenerationConfig& c, uint64_t step) {
  SamplingParams p;
  p.temperature = c.temperature;
  p.top_p = c.top_p;
  p.min_p = c.min_p;
  p.repetition_penalty = c.repetition_penalty;
  p.top_k = static_cast<int>(c.top_k);
  p.seed = c.seed;
  p.step = step;
  return p;
}

std::vector<float> gaussian(size_t n, std::mt19937& rng, float sigma) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace

// ---- argmax ---------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("argmax_rows equals the CPU argmax (first index of ties)", T, __half, __nv_bfloat16, float) {
  if (tc::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("argmax_rows"));
  for (int vocab : {49152, 128256, 32000, 1000, 49153, 7}) {
    for (int batch : {1, 64}) {
      std::vector<float> host = rounded<T>(random_floats(size_t(batch) * vocab, rng, -8.f, 8.f));
      std::uniform_int_distribution<int> pos(0, vocab - 1);
      for (int b = 0; b < batch; ++b) {  // plant ties of the maximum, at the row's ends too
        float* row = host.data() + size_t(b) * vocab;
        const float top = Elem<T>::round(9.0f + float(b % 3));
        const int ties = 1 + b % 4;
        for (int i = 0; i < ties; ++i) row[pos(rng)] = top;
        if (b % 5 == 1) row[vocab - 1] = top;
        if (b % 7 == 2) row[0] = top;
      }
      DeviceBuffer<T> d(host.size());
      Elem<T>::write(d.data(), host.data(), host.size());
      DeviceBuffer<int32_t> out(batch);
      poison_ids(out);
      tc::argmax_rows(d.data(), batch, vocab, out.data());
      sync_launch();
      const auto got = download_ids(out);
      int wrong = 0;
      for (int b = 0; b < batch; ++b) {
        const std::span<const float> row(host.data() + size_t(b) * vocab, size_t(vocab));
        wrong += got[b] != Sampler::argmax(row);
      }
      std::printf("  argmax_rows %-4s vocab %6d batch %2d: %d wrong\n", Elem<T>::name, vocab, batch, wrong);
      CHECK(wrong == 0);
    }
  }
}

// ---- greedy through the sampler, with the repetition penalty --------------------------------------

TEST_CASE_TEMPLATE("greedy sampling applies the repetition penalty like the CPU", T, __half, __nv_bfloat16, float) {
  if (tc::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("greedy+penalty"));
  constexpr int kBatch = 64, kHist = 300;
  for (int vocab : {32000, 49153}) {
    std::vector<float> host = rounded<T>(random_floats(size_t(kBatch) * vocab, rng, -6.f, 6.f));
    std::vector<int32_t> hist(size_t(kBatch) * kHist, -1), hist_len(kBatch);
    std::vector<SamplingParams> params(kBatch);
    std::uniform_int_distribution<int> tok(0, vocab - 1), len(0, kHist);
    for (int b = 0; b < kBatch; ++b) {
      float* row = host.data() + size_t(b) * vocab;
      std::vector<int32_t> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + 4, order.end(), [&](int x, int y) { return row[x] > row[y]; });
      hist_len[b] = len(rng);
      int32_t* h = hist.data() + size_t(b) * kHist;
      for (int i = 0; i < hist_len[b]; ++i) h[i] = tok(rng);
      if (hist_len[b] >= 4) {  // the best tokens were seen (twice for one): the penalty must move the argmax
        h[0] = order[0], h[1] = order[1], h[2] = order[0], h[3] = vocab + 5;  // out of range: ignored
      }
      if (b % 9 == 0) row[order[2]] = row[order[0]] / 1.3f;  // a tie after the penalty
      if (b % 11 == 0) row[tok(rng)] = -row[order[0]];       // a negative seen logit is multiplied
      params[b].temperature = (b % 3 == 0) ? 0.7f : 0.0f;
      params[b].top_k = (b % 3 == 0) ? 1 : 0;  // top_k == 1 is greedy too
      params[b].repetition_penalty = (b % 8 == 7) ? 0.8f : 1.3f;
      params[b].seed = 17;
    }
    host = rounded<T>(host);
    DeviceBuffer<T> d(host.size());
    Elem<T>::write(d.data(), host.data(), host.size());
    auto d_hist = upload(hist);
    auto d_len = upload(hist_len);
    auto d_params = upload(params);
    DeviceBuffer<int32_t> out(kBatch);
    tc::GpuSampler<T> sampler(kBatch, vocab);
    for (bool with_len : {true, false}) {
      poison_ids(out);
      sampler.sample(d.data(), kBatch, vocab, d_params.data(), d_hist.data(), with_len ? d_len.data() : nullptr,
                     kHist, out.data(), nullptr);
      sync_launch();
      const auto got = download_ids(out);
      int wrong = 0, moved = 0;
      for (int b = 0; b < kBatch; ++b) {
        std::vector<float> row(host.begin() + size_t(b) * vocab, host.begin() + size_t(b + 1) * vocab);
        const int plain = Sampler::argmax(row);
        const int32_t* h = hist.data() + size_t(b) * kHist;
        const std::vector<int32_t> seen(h, h + (with_len ? hist_len[b] : kHist));
        Sampler::apply_repetition_penalty(row, seen, params[b].repetition_penalty);
        const int want = Sampler::argmax(row);
        wrong += got[b] != want;
        moved += want != plain;
      }
      std::printf("  greedy+penalty %-4s vocab %6d %s: %d wrong, penalty moved the argmax in %d rows\n",
                  Elem<T>::name, vocab, with_len ? "lengths" : "-1 padded", wrong, moved);
      CHECK(wrong == 0);
      CHECK(moved > 0);
    }
  }
}

// ---- sampled distributions --------------------------------------------------------------------------

namespace {

struct Case {
  const char* name;
  int vocab;
  const char* logits;  // gaussian sigma 2 | flat | steps (heavy ties)
  GenerationConfig cfg;
  bool penalty_history = false;
};

GenerationConfig config(float temperature, int top_k, float top_p, float min_p, float penalty = 1.0f) {
  GenerationConfig c;
  c.temperature = temperature;
  c.top_k = top_k;
  c.top_p = top_p;
  c.min_p = min_p;
  c.repetition_penalty = penalty;
  c.seed = 1234;
  return c;
}

std::vector<Case> cases() {
  return {
      {"top-k 50", 32000, "gaussian", config(0.8f, 50, 1.0f, 0.0f)},
      {"top-k 40, top-p 0.8, min-p 0.05", 32000, "gaussian", config(1.0f, 40, 0.8f, 0.05f)},
      {"top-p 0.9 over the vocabulary", 32000, "gaussian", config(1.0f, 0, 0.9f, 0.0f)},
      {"top-p 0.9, odd vocabulary", 49153, "gaussian", config(0.9f, 0, 0.9f, 0.0f)},
      {"temperature + min-p 0.1", 32000, "gaussian", config(1.0f, 0, 1.0f, 0.1f)},
      {"temperature only (whole vocabulary)", 1000, "gaussian", config(1.5f, 0, 1.0f, 0.0f)},
      {"top-k 2000, top-p 0.95", 32000, "gaussian", config(1.0f, 2000, 0.95f, 0.0f)},
      {"top-k 10000, top-p 0.98", 32000, "gaussian", config(1.0f, 10000, 0.98f, 0.0f)},
      {"flat logits, top-p 0.5", 32000, "flat", config(1.0f, 0, 0.5f, 0.0f)},
      {"heavy ties, top-k 30", 32000, "steps", config(0.7f, 30, 1.0f, 0.0f)},
      {"heavy ties, top-p 0.7", 32000, "steps", config(0.7f, 0, 0.7f, 0.0f)},
      {"repetition penalty, top-k 20", 32000, "gaussian", config(0.7f, 20, 1.0f, 0.0f, 1.5f), true},
  };
}

}  // namespace

TEST_CASE_TEMPLATE("sampled tokens follow the CPU's final distribution", T, __half, __nv_bfloat16, float) {
  if (tc::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("sampling distribution"));
  constexpr int kRows = 1024, kLaunches = 1024, kHist = 64;
  constexpr int kDraws = kRows * kLaunches;
  for (Case c : cases()) {
    const int vocab = c.vocab;
    std::vector<float> logits;
    if (std::string(c.logits) == "flat") {
      logits = random_floats(vocab, rng, -1.f, 1.f);
    } else if (std::string(c.logits) == "steps") {  // values on a coarse grid: ties at every cut
      logits = gaussian(vocab, rng, 2.0f);
      for (auto& x : logits) x = std::round(x * 2.0f) / 2.0f;
    } else {
      logits = gaussian(vocab, rng, 2.0f);
    }
    logits = rounded<T>(logits);
    std::vector<int32_t> history;
    if (c.penalty_history) {  // the likeliest tokens were seen
      std::vector<int32_t> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + 10, order.end(),
                        [&](int x, int y) { return logits[x] > logits[y]; });
      for (int i = 0; i < 10; i += 2) history.push_back(order[i]);
      history.push_back(order[0]);
    }
    snap_cuts(logits, history, c.cfg);
    const auto want = cpu_distribution(logits, history, c.cfg);

    // The real CPU Sampler draws only kept tokens (checks this mirror of it).
    {
      GenerationConfig cc = c.cfg;
      Sampler cpu(cc);
      for (int i = 0; i < 50; ++i) {
        std::vector<float> l = logits;
        REQUIRE(want.count(cpu.sample(l, history)) == 1);
      }
    }

    DeviceBuffer<T> d(size_t(kRows) * vocab);
    Elem<T>::write(d.data(), logits.data(), size_t(vocab));
    for (int r = 1; r < kRows; ++r)
      TURBINE_CUDA_CHECK(cudaMemcpy(d.data() + size_t(r) * vocab, d.data(), size_t(vocab) * sizeof(T),
                                    cudaMemcpyDeviceToDevice));
    std::vector<int32_t> hist(size_t(kRows) * kHist, -1);
    for (int r = 0; r < kRows; ++r) std::copy(history.begin(), history.end(), hist.begin() + size_t(r) * kHist);
    auto d_hist = upload(hist);
    std::vector<SamplingParams> params(kRows);
    DeviceBuffer<SamplingParams> d_params(kRows);
    DeviceBuffer<int32_t> out(kRows);
    tc::GpuSampler<T> sampler(kRows, vocab);

    std::vector<int64_t> count(vocab, 0);
    std::vector<int32_t> first;
    for (int l = 0; l < kLaunches; ++l) {
      for (int r = 0; r < kRows; ++r) params[r] = to_params(c.cfg, uint64_t(l) * kRows + r);
      TURBINE_CUDA_CHECK(cudaMemcpy(d_params.data(), params.data(), d_params.bytes(), cudaMemcpyHostToDevice));
      poison_ids(out);
      sampler.sample(d.data(), kRows, vocab, d_params.data(), d_hist.data(), nullptr, kHist, out.data(), nullptr);
      sync_launch();
      const auto got = download_ids(out);
      if (l == 0) first = got;
      for (int32_t id : got) {
        REQUIRE(id >= 0);  // written (not the poison) and in range
        REQUIRE(id < vocab);
        ++count[id];
      }
    }

    // Reproducible: the same (seed, step) pairs again give the same tokens; the steps differ.
    for (int r = 0; r < kRows; ++r) params[r] = to_params(c.cfg, uint64_t(r));
    TURBINE_CUDA_CHECK(cudaMemcpy(d_params.data(), params.data(), d_params.bytes(), cudaMemcpyHostToDevice));
    poison_ids(out);
    sampler.sample(d.data(), kRows, vocab, d_params.data(), d_hist.data(), nullptr, kHist, out.data(), nullptr);
    sync_launch();
    const auto again = download_ids(out);
    CHECK(again == first);
    const size_t distinct = std::set<int32_t>(first.begin(), first.end()).size();

    // Total variation: per token when the kept set is small enough to estimate each token's
    // frequency from kDraws draws; else over 64 groups of consecutive CPU ranks of equal mass.
    int64_t outside = 0;
    for (int i = 0; i < vocab; ++i)
      if (!want.count(i)) outside += count[i];
    double tv = 0.0;
    const bool per_token = want.size() <= 1000;
    if (per_token) {
      for (const auto& [id, p] : want) tv += std::fabs(double(count[id]) / kDraws - p);
    } else {
      const CpuList L = cpu_list(logits, history, c.cfg);
      double mass = 0.0, emp = 0.0, acc = 0.0;
      int group = 1;
      for (size_t i = 0; i < L.keep; ++i) {
        const int32_t id = L.idx[i];
        mass += want.at(id), emp += double(count[id]) / kDraws, acc += want.at(id);
        if (acc >= group / 64.0 || i + 1 == L.keep) tv += std::fabs(emp - mass), mass = emp = 0.0, ++group;
      }
    }
    tv *= 0.5;
    std::printf("  %-4s %-38s kept %6zu  TV %.4f (%s)  outside %lld  distinct of %d: %zu\n", Elem<T>::name, c.name,
                want.size(), tv, per_token ? "per token" : "64 groups", static_cast<long long>(outside), kRows,
                distinct);
    INFO(c.name);
    CHECK(outside == 0);
    CHECK(tv < 0.02);
    if (want.size() > 1) CHECK(distinct > 1);
  }
}

// ---- graph capture ------------------------------------------------------------------------------------

TEST_CASE("sampling is capturable in a CUDA graph and replays the same draws") {
  if (tc::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("sampling graph"));
  constexpr int kBatch = 16, kVocab = 49152;
  const std::vector<float> logits = gaussian(size_t(kBatch) * kVocab, rng, 2.0f);
  DeviceBuffer<float> d(logits.size());
  Elem<float>::write(d.data(), logits.data(), logits.size());
  std::vector<SamplingParams> params(kBatch);
  for (int b = 0; b < kBatch; ++b) {  // every path: greedy, top-k, top-p, temperature
    params[b] = to_params(config(b % 4 == 0 ? 0.0f : 0.9f, b % 4 == 1 ? 40 : 0, b % 4 == 2 ? 0.9f : 1.0f, 0.0f), b);
  }
  auto d_params = upload(params);
  DeviceBuffer<int32_t> direct(kBatch), replay(kBatch);
  tc::GpuSampler<float> sampler(kBatch, kVocab);
  cudaStream_t s;
  TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  poison_ids(direct);
  sampler.sample(d.data(), kBatch, kVocab, d_params.data(), nullptr, nullptr, 0, direct.data(), s);
  TURBINE_CUDA_CHECK(cudaGetLastError());
  TURBINE_CUDA_CHECK(cudaStreamSynchronize(s));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  TURBINE_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  sampler.sample(d.data(), kBatch, kVocab, d_params.data(), nullptr, nullptr, 0, replay.data(), s);
  TURBINE_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  TURBINE_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  poison_ids(replay);
  TURBINE_CUDA_CHECK(cudaGraphLaunch(exec, s));
  TURBINE_CUDA_CHECK(cudaGetLastError());
  TURBINE_CUDA_CHECK(cudaStreamSynchronize(s));
  CHECK(download_ids(replay) == download_ids(direct));
  TURBINE_CUDA_CHECK(cudaGraphExecDestroy(exec));
  TURBINE_CUDA_CHECK(cudaGraphDestroy(graph));
  TURBINE_CUDA_CHECK(cudaStreamDestroy(s));
}

TEST_CASE("GpuSampler names sizes outside what it was built for") {
  if (tc::device_count() == 0) return skip("no CUDA device on this machine");
  tc::GpuSampler<__half> sampler(4, 1000);
  DeviceBuffer<__half> logits(8 * 2000);
  DeviceBuffer<SamplingParams> params(8);
  DeviceBuffer<int32_t> out(8);
  CHECK_THROWS_WITH_AS(sampler.sample(logits.data(), 8, 1000, params.data(), nullptr, nullptr, 0, out.data()),
                       doctest::Contains("batch 8"), turbine::Error);
  CHECK_THROWS_WITH_AS(sampler.sample(logits.data(), 2, 2000, params.data(), nullptr, nullptr, 0, out.data()),
                       doctest::Contains("vocab 2000"), turbine::Error);
  CHECK_THROWS_WITH_AS(sampler.sample(logits.data(), 2, 1000, params.data(), nullptr, nullptr, 5, out.data()),
                       doctest::Contains("history is null"), turbine::Error);
  CHECK_THROWS_WITH_AS(tc::argmax_rows(logits.data(), 1, 0, out.data()), doctest::Contains("vocab 0"),
                       turbine::Error);
}
