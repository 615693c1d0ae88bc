// The fused decode GEMVs (gemv_fused.cuh) against the CPU reference of the unfused chain: RMSNorm of
// residual + delta (or of embedding rows) then linear; silu(gate) * up then linear; the gate/up
// projection with silu(gate) * up as its epilogue; the QKV projection with bias, rotary embedding
// and KV-cache store. Fresh random inputs (seed printed),
// poisoned outputs, relative error < 1e-3 (f16) / 1e-2 (bf16), NaN never passes. A chain of fused
// GEMVs with no synchronization checks that the ping-pong residual and the reused delta buffer are
// ordered under programmatic dependent launch.
#include <doctest/doctest.h>

#include <cmath>
#include <turbine/backend/cpu/elementwise.hpp>
#include <turbine/backend/cpu/linear.hpp>
#include <turbine/backend/cuda/gemv_fused.cuh>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

namespace {

template <class T>
WeightMatrix matrix_of(const HalfHost& w, int64_t rows, int64_t cols) {
  return WeightMatrix{std::same_as<T, __half> ? StorageType::F16 : StorageType::BF16, rows, cols,
                      reinterpret_cast<const std::byte*>(w.bits.data())};
}

template <class T>
HalfHost random_weights(int n, int k, std::mt19937& rng) {
  const float a = 2.f / std::sqrt(static_cast<float>(k));
  return random_half<T>(size_t(n) * k, rng, -a, a);
}

/// x = round_T(rms_norm(v) * gamma): what the fused prologue stages (and the unfused norm stores).
template <class T>
std::vector<float> norm_rounded(const std::vector<float>& v, const std::vector<float>& gamma, int tokens, int k,
                                float eps) {
  std::vector<float> x(v.size());
  cpu::rms_norm(v.data(), gamma.data(), tokens, k, eps, x.data());
  return round_to<T>(x);
}

template <class T>
std::vector<float> silu_mul_rounded(const std::vector<float>& gate_up, int tokens, int inter) {
  std::vector<float> act(size_t(tokens) * inter);
  for (int t = 0; t < tokens; ++t)
    cpu::silu_mul(gate_up.data() + size_t(t) * 2 * inter, gate_up.data() + size_t(t) * 2 * inter + inter, inter,
                  act.data() + size_t(t) * inter);
  return round_to<T>(act);
}

std::vector<float> download_f32(const cuda::DeviceBuffer<float>& d) { return download(d); }

constexpr float kEps = 1e-5f;

}  // namespace

TEST_CASE_TEMPLATE("gemv_norm: RMSNorm of residual + delta, then the GEMV; block 0 writes the residual", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_norm"));
  const char* tn = HalfTraits<T>::name;
  for (int k : {576, 4096, 200, 2048}) {
    for (int n : {960, 9, 4100}) {
      const auto w = random_weights<T>(n, k, rng);
      auto d_w = upload_half<T>(w);
      const WeightMatrix wm = matrix_of<T>(w, n, k);
      const auto gamma = random_half<T>(k, rng, 0.5f, 1.5f);
      auto d_gamma = upload_half<T>(gamma);
      for (int tokens : {1, 2, 3, 5, 8}) {
        for (int mode = 0; mode < 3; ++mode) {  // 0: residual + delta, 1: residual alone, 2: embedding rows
          const size_t m = size_t(tokens) * k;
          std::vector<float> v(m);
          cuda::NormInput<T> in;
          in.gamma = d_gamma.data();
          in.eps = kEps;
          const auto res = random_floats(m, rng, -2.f, 2.f);
          const auto delta = random_half<T>(m, rng, -1.f, 1.f);
          auto d_res = upload(res);
          auto d_delta = upload_half<T>(delta);
          constexpr int kVocab = 37;
          const auto table = random_half<T>(size_t(kVocab) * k, rng, -2.f, 2.f);
          auto d_table = upload_half<T>(table);
          std::vector<int32_t> ids(tokens);
          for (auto& id : ids) id = int32_t(rng() % kVocab);
          auto d_ids = upload(ids);
          if (mode == 2) {
            in.embed = d_table.data();
            in.ids = d_ids.data();
            in.vocab = kVocab;
            for (int t = 0; t < tokens; ++t)
              std::copy_n(table.values.begin() + size_t(ids[t]) * k, k, v.begin() + size_t(t) * k);
          } else {
            in.residual = d_res.data();
            v = res;
            if (mode == 0) {
              in.delta = d_delta.data();
              for (size_t i = 0; i < m; ++i) v[i] += delta.values[i];
            }
          }
          cuda::DeviceBuffer<float> d_res_out(m);
          poison(d_res_out);
          in.residual_out = d_res_out.data();
          const auto x = norm_rounded<T>(v, gamma.values, tokens, k, kEps);
          std::vector<float> ref(size_t(tokens) * n);
          cpu::linear(wm, x.data(), tokens, ref.data());
          const std::string what = std::string(" ") + tn + " mode " + std::to_string(mode) + " tokens " +
                                   std::to_string(tokens) + " n " + std::to_string(n) + " k " + std::to_string(k);
          if (mode == 1 || tokens == 3) {  // fp32 output (the LM head's logits)
            cuda::DeviceBuffer<float> d_y(size_t(tokens) * n);
            poison(d_y);
            cuda::gemv_norm(d_w.data(), in, static_cast<const T*>(nullptr), d_y.data(), tokens, n, k);
            sync_launch();
            expect_close("gemv_norm f32 out" + what, download_f32(d_y), ref, HalfTraits<T>::tol);
          } else {
            cuda::DeviceBuffer<T> d_y(size_t(tokens) * n);
            poison(d_y);
            cuda::gemv_norm(d_w.data(), in, static_cast<const T*>(nullptr), d_y.data(), tokens, n, k);
            sync_launch();
            expect_close("gemv_norm" + what, download_half(d_y), ref, HalfTraits<T>::tol);
          }
          expect_close("gemv_norm residual_out" + what, download(d_res_out), v, 1e-6);
          if (mode != 2) expect_close("gemv_norm residual untouched" + what, download(d_res), res, 1e-7);
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("gemv_norm with a bias, and its size checks", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_norm bias"));
  const int k = 576, n = 1000, tokens = 4;
  const auto w = random_weights<T>(n, k, rng);
  auto d_w = upload_half<T>(w);
  const auto gamma = random_half<T>(k, rng, 0.5f, 1.5f);
  const auto bias = random_half<T>(n, rng);
  auto d_gamma = upload_half<T>(gamma);
  auto d_bias = upload_half<T>(bias);
  const auto res = random_floats(size_t(tokens) * k, rng, -2.f, 2.f);
  auto d_res = upload(res);
  cuda::NormInput<T> in;
  in.residual = d_res.data();
  in.gamma = d_gamma.data();
  in.eps = kEps;
  cuda::DeviceBuffer<T> d_y(size_t(tokens) * n);
  poison(d_y);
  cuda::gemv_norm(d_w.data(), in, d_bias.data(), d_y.data(), tokens, n, k);
  sync_launch();
  const auto x = norm_rounded<T>(res, gamma.values, tokens, k, kEps);
  std::vector<float> ref(size_t(tokens) * n);
  cpu::linear(matrix_of<T>(w, n, k), x.data(), tokens, ref.data(), bias.values.data());
  expect_close(std::string("gemv_norm bias ") + HalfTraits<T>::name, download_half(d_y), ref, HalfTraits<T>::tol);

  in.residual_out = d_res.data();
  CHECK_THROWS_WITH_AS(cuda::gemv_norm(d_w.data(), in, d_bias.data(), d_y.data(), tokens, n, k),
                       doctest::Contains("must not alias"), turbine::Error);
  in.residual_out = nullptr;
  CHECK_THROWS_WITH_AS(cuda::gemv_norm(d_w.data(), in, d_bias.data(), d_y.data(), tokens, n, 12),
                       doctest::Contains("multiple of 8"), turbine::Error);
  CHECK_THROWS_WITH_AS(cuda::gemv_norm(d_w.data(), in, d_bias.data(), d_y.data(), 8, n, 16384),
                       doctest::Contains("shared memory"), turbine::Error);
  CHECK_THROWS_WITH_AS(cuda::gemv_norm(d_w.data(), in, d_bias.data(), d_y.data(), 9, n, k),
                       doctest::Contains("supported: 1 to 8"), turbine::Error);
}

TEST_CASE_TEMPLATE("gemv_silu_mul: silu(gate) * up, then the GEMV", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_silu_mul"));
  const char* tn = HalfTraits<T>::name;
  for (int inter : {1536, 14336, 200}) {
    for (int n : {576, 9, 4096}) {
      const auto w = random_weights<T>(n, inter, rng);
      auto d_w = upload_half<T>(w);
      const WeightMatrix wm = matrix_of<T>(w, n, inter);
      for (int tokens : {1, 3, 8}) {
        const auto gate_up = random_half<T>(size_t(tokens) * 2 * inter, rng, -4.f, 4.f);
        auto d_gate_up = upload_half<T>(gate_up);
        cuda::DeviceBuffer<T> d_y(size_t(tokens) * n);
        poison(d_y);
        cuda::gemv_silu_mul(d_w.data(), d_gate_up.data(), static_cast<const T*>(nullptr), d_y.data(), tokens, n,
                            inter);
        sync_launch();
        const auto act = silu_mul_rounded<T>(gate_up.values, tokens, inter);
        std::vector<float> ref(size_t(tokens) * n);
        cpu::linear(wm, act.data(), tokens, ref.data());
        expect_close(std::string("gemv_silu_mul ") + tn + " tokens " + std::to_string(tokens) + " n " +
                         std::to_string(n) + " inter " + std::to_string(inter),
                     download_half(d_y), ref, HalfTraits<T>::tol);
      }
    }
  }
}

TEST_CASE_TEMPLATE("gemv_gate_up_silu: the gate/up GEMV with silu(gate) * up as its epilogue", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_gate_up_silu"));
  const char* tn = HalfTraits<T>::name;
  for (int k : {576, 4096, 200}) {
    for (int inter : {1536, 8, 1000}) {
      const auto w = random_weights<T>(2 * inter, k, rng);
      auto d_w = upload_half<T>(w);
      const auto gamma = random_half<T>(k, rng, 0.5f, 1.5f);
      auto d_gamma = upload_half<T>(gamma);
      for (int tokens : {1, 3, 8}) {
        for (bool with_norm : {false, true}) {
          const size_t m = size_t(tokens) * k;
          const auto x = random_half<T>(m, rng, -2.f, 2.f);
          const auto res = random_floats(m, rng, -2.f, 2.f);
          auto d_x = upload_half<T>(x);
          auto d_res = upload(res);
          cuda::DeviceBuffer<T> d_act(size_t(tokens) * inter);
          poison(d_act);
          std::vector<float> xin = x.values;
          if (with_norm) {
            cuda::NormInput<T> in;
            in.residual = d_res.data();
            in.gamma = d_gamma.data();
            in.eps = kEps;
            cuda::gemv_norm_gate_up_silu(d_w.data(), in, d_act.data(), tokens, inter, k);
            xin = norm_rounded<T>(res, gamma.values, tokens, k, kEps);
          } else {
            cuda::gemv_gate_up_silu(d_w.data(), d_x.data(), d_act.data(), tokens, inter, k);
          }
          sync_launch();
          std::vector<float> gate_up(size_t(tokens) * 2 * inter);
          cpu::linear(matrix_of<T>(w, 2 * inter, k), xin.data(), tokens, gate_up.data());
          std::vector<float> ref(size_t(tokens) * inter);
          for (int t = 0; t < tokens; ++t)
            cpu::silu_mul(gate_up.data() + size_t(t) * 2 * inter, gate_up.data() + size_t(t) * 2 * inter + inter, inter,
                          ref.data() + size_t(t) * inter);
          expect_close(std::string("gemv_gate_up_silu ") + tn + (with_norm ? " norm" : "") + " tokens " +
                           std::to_string(tokens) + " inter " + std::to_string(inter) + " k " + std::to_string(k),
                       download_half(d_act), ref, HalfTraits<T>::tol);
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("gemv_norm_rope and gemv_rope: QKV projection with bias, rotary embedding and KV-cache store", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_norm_rope"));
  const char* tn = HalfTraits<T>::name;
  struct Shape {
    int heads, kv_heads, head_dim, k;
    bool bias;
  };
  for (const Shape& s : {Shape{9, 3, 64, 576, false}, Shape{32, 8, 128, 4096, false}, Shape{4, 1, 64, 256, true},
                         Shape{2, 2, 16, 64, true}, Shape{8, 2, 128, 1024, true}}) {
    const int d = s.head_dim, q_rows = s.heads * d, kv_rows = s.kv_heads * d, n = q_rows + 2 * kv_rows, k = s.k;
    const auto w = random_weights<T>(n, k, rng);
    auto d_w = upload_half<T>(w);
    const auto gamma = random_half<T>(k, rng, 0.5f, 1.5f);
    auto d_gamma = upload_half<T>(gamma);
    const auto bias = random_half<T>(n, rng);
    auto d_bias = upload_half<T>(bias);
    std::vector<float> inv_freq(d / 2);
    for (int i = 0; i < d / 2; ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, float(2 * i) / float(d));
    auto d_inv_freq = upload(inv_freq);
    constexpr int kPositions = 300;
    for (int tokens : {1, 2, 4, 8}) {
      const size_t m = size_t(tokens) * k;
      const auto res = random_floats(m, rng, -2.f, 2.f);
      const auto delta = random_half<T>(m, rng, -1.f, 1.f);
      auto d_res = upload(res);
      auto d_delta = upload_half<T>(delta);
      cuda::DeviceBuffer<float> d_res_out(m);
      std::vector<int> pos(tokens);
      for (auto& p : pos) p = int(rng() % kPositions);
      auto d_pos = upload(pos);
      // One cache pair per token (batched decode: each token its own sequence), poisoned.
      std::vector<cuda::DeviceBuffer<T>> kc, vc;
      std::vector<T*> kp, vp;
      for (int t = 0; t < tokens; ++t) {
        kc.emplace_back(size_t(kPositions) * kv_rows);
        vc.emplace_back(size_t(kPositions) * kv_rows);
        poison(kc.back());
        poison(vc.back());
        kp.push_back(kc.back().data());
        vp.push_back(vc.back().data());
      }
      auto d_kp = upload(kp);
      auto d_vp = upload(vp);
      cuda::DeviceBuffer<T> d_q(size_t(tokens) * q_rows);
      poison(d_q);

      cuda::NormInput<T> in;
      in.residual = d_res.data();
      in.delta = d_delta.data();
      in.gamma = d_gamma.data();
      in.eps = kEps;
      in.residual_out = d_res_out.data();
      cuda::RopeKvOutput<T> o;
      o.q = d_q.data();
      o.k_caches = d_kp.data();
      o.v_caches = d_vp.data();
      o.positions = d_pos.data();
      o.inv_freq = d_inv_freq.data();
      o.bias = s.bias ? d_bias.data() : nullptr;
      o.heads = s.heads;
      o.kv_heads = s.kv_heads;
      o.head_dim = d;
      cuda::gemv_norm_rope(d_w.data(), in, o, tokens, k);
      sync_launch();

      // Reference: x, qkv = x W^T + bias in fp32, rotate q and k heads, then round once.
      std::vector<float> v = res;
      for (size_t i = 0; i < m; ++i) v[i] += delta.values[i];
      const auto x = norm_rounded<T>(v, gamma.values, tokens, k, kEps);
      std::vector<float> qkv(size_t(tokens) * n);
      cpu::linear(matrix_of<T>(w, n, k), x.data(), tokens, qkv.data(), s.bias ? bias.values.data() : nullptr);
      std::vector<float> ref_q(size_t(tokens) * q_rows), ref_k(size_t(tokens) * kv_rows), ref_v(size_t(tokens) * kv_rows);
      for (int t = 0; t < tokens; ++t) {
        float* row = qkv.data() + size_t(t) * n;
        for (int h = 0; h < s.heads + s.kv_heads; ++h)
          for (int i = 0; i < d / 2; ++i) {
            const float angle = float(pos[t]) * inv_freq[i];
            const double c = std::cos(double(angle)), sn = std::sin(double(angle));
            const double a = row[h * d + i], b = row[h * d + i + d / 2];
            row[h * d + i] = float(a * c - b * sn);
            row[h * d + i + d / 2] = float(b * c + a * sn);
          }
        std::copy_n(row, q_rows, ref_q.begin() + size_t(t) * q_rows);
        std::copy_n(row + q_rows, kv_rows, ref_k.begin() + size_t(t) * kv_rows);
        std::copy_n(row + q_rows + kv_rows, kv_rows, ref_v.begin() + size_t(t) * kv_rows);
      }
      std::vector<float> got_k, got_v;
      int64_t written_elsewhere = 0;
      for (int t = 0; t < tokens; ++t) {
        const auto hk = download_half(kc[t]), hv = download_half(vc[t]);
        got_k.insert(got_k.end(), hk.begin() + size_t(pos[t]) * kv_rows, hk.begin() + size_t(pos[t] + 1) * kv_rows);
        got_v.insert(got_v.end(), hv.begin() + size_t(pos[t]) * kv_rows, hv.begin() + size_t(pos[t] + 1) * kv_rows);
        for (size_t i = 0; i < hk.size(); ++i)
          if (i / kv_rows != size_t(pos[t])) written_elsewhere += !std::isnan(hk[i]) + !std::isnan(hv[i]);
      }
      const std::string what = std::string(" ") + tn + " heads " + std::to_string(s.heads) + "/" +
                               std::to_string(s.kv_heads) + " hd " + std::to_string(d) + " k " + std::to_string(k) +
                               (s.bias ? " bias" : "") + " tokens " + std::to_string(tokens);
      expect_close("rope q" + what, download_half(d_q), ref_q, HalfTraits<T>::tol);
      expect_close("rope k cache" + what, got_k, ref_k, HalfTraits<T>::tol);
      expect_close("rope v cache" + what, got_v, ref_v, HalfTraits<T>::tol);
      expect_close("rope residual_out" + what, download(d_res_out), v, 1e-6);
      INFO(what);
      CHECK(written_elsewhere == 0);
      // gemv_rope: the same epilogue on x as stored (the reference's normalized x, rounded to T)
      HalfHost xh;
      for (float f : x) {
        xh.bits.push_back(HalfTraits<T>::round(f));
        xh.values.push_back(f);
      }
      auto d_x = upload_half<T>(xh);
      poison(d_q);
      for (int t = 0; t < tokens; ++t) {
        poison(kc[t]);
        poison(vc[t]);
      }
      cuda::gemv_rope(d_w.data(), d_x.data(), o, tokens, k);
      sync_launch();
      std::vector<float> got_k2, got_v2;
      for (int t = 0; t < tokens; ++t) {
        const auto hk = download_half(kc[t]), hv = download_half(vc[t]);
        got_k2.insert(got_k2.end(), hk.begin() + size_t(pos[t]) * kv_rows, hk.begin() + size_t(pos[t] + 1) * kv_rows);
        got_v2.insert(got_v2.end(), hv.begin() + size_t(pos[t]) * kv_rows, hv.begin() + size_t(pos[t] + 1) * kv_rows);
      }
      expect_close("gemv_rope q" + what, download_half(d_q), ref_q, HalfTraits<T>::tol);
      expect_close("gemv_rope k cache" + what, got_k2, ref_k, HalfTraits<T>::tol);
      expect_close("gemv_rope v cache" + what, got_v2, ref_v, HalfTraits<T>::tol);
    }
  }
}

TEST_CASE_TEMPLATE("a layer's fused GEMVs back to back: ping-pong residual and reused delta under PDL", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_fused chain"));
  const char* tn = HalfTraits<T>::name;
  const int hidden = 576, inter = 1536;
  const auto w_gu = random_weights<T>(2 * inter, hidden, rng);
  const auto w_down = random_weights<T>(hidden, inter, rng);
  const auto w_q = random_weights<T>(hidden, hidden, rng);
  auto d_w_gu = upload_half<T>(w_gu);
  auto d_w_down = upload_half<T>(w_down);
  auto d_w_q = upload_half<T>(w_q);
  const auto g1 = random_half<T>(hidden, rng, 0.5f, 1.5f), g2 = random_half<T>(hidden, rng, 0.5f, 1.5f);
  auto d_g1 = upload_half<T>(g1);
  auto d_g2 = upload_half<T>(g2);
  cudaStream_t stream;
  TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (int tokens : {1, 4, 8}) {
    const size_t m = size_t(tokens) * hidden;
    const auto res = random_floats(m, rng, -2.f, 2.f);
    const auto delta = random_half<T>(m, rng, -1.f, 1.f);
    auto d_res0 = upload(res);
    auto d_delta = upload_half<T>(delta);
    cuda::DeviceBuffer<float> d_res1(m);
    cuda::DeviceBuffer<T> d_gu(size_t(tokens) * 2 * inter), d_y(size_t(tokens) * hidden);
    poison(d_res1);
    poison(d_gu);
    poison(d_y);
    auto input = [&](const float* r, const T* dl, const T* g, float* out) {
      cuda::NormInput<T> in;
      in.residual = r;
      in.delta = dl;
      in.gamma = g;
      in.eps = kEps;
      in.residual_out = out;
      return in;
    };
    // A reads res0 + delta and writes res1; B overwrites delta; C reads res1 + delta, writes res0.
    cuda::gemv_norm(d_w_gu.data(), input(d_res0.data(), d_delta.data(), d_g1.data(), d_res1.data()),
                    static_cast<const T*>(nullptr), d_gu.data(), tokens, 2 * inter, hidden, stream);
    cuda::gemv_silu_mul(d_w_down.data(), d_gu.data(), static_cast<const T*>(nullptr), d_delta.data(), tokens, hidden,
                        inter, stream);
    cuda::gemv_norm(d_w_q.data(), input(d_res1.data(), d_delta.data(), d_g2.data(), d_res0.data()),
                    static_cast<const T*>(nullptr), d_y.data(), tokens, hidden, hidden, stream);
    TURBINE_CUDA_CHECK(cudaGetLastError());
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream));

    const std::string what = std::string(" ") + tn + " tokens " + std::to_string(tokens);
    std::vector<float> v1 = res;
    for (size_t i = 0; i < m; ++i) v1[i] += delta.values[i];
    std::vector<float> ref_gu(size_t(tokens) * 2 * inter);
    const auto x1 = norm_rounded<T>(v1, g1.values, tokens, hidden, kEps);
    cpu::linear(matrix_of<T>(w_gu, 2 * inter, hidden), x1.data(), tokens, ref_gu.data());
    const auto gu = download_half(d_gu);
    expect_close("chain gate_up" + what, gu, ref_gu, HalfTraits<T>::tol);
    expect_close("chain residual 1" + what, download(d_res1), v1, 1e-6);
    const auto act = silu_mul_rounded<T>(gu, tokens, inter);
    std::vector<float> ref_down(m);
    cpu::linear(matrix_of<T>(w_down, hidden, inter), act.data(), tokens, ref_down.data());
    const auto down = download_half(d_delta);
    expect_close("chain down" + what, down, ref_down, HalfTraits<T>::tol);
    std::vector<float> v2 = v1;
    for (size_t i = 0; i < m; ++i) v2[i] += down[i];
    const auto x2 = norm_rounded<T>(v2, g2.values, tokens, hidden, kEps);
    std::vector<float> ref_y(m);
    cpu::linear(matrix_of<T>(w_q, hidden, hidden), x2.data(), tokens, ref_y.data());
    expect_close("chain q" + what, download_half(d_y), ref_y, HalfTraits<T>::tol);
    expect_close("chain residual 2" + what, download(d_res0), v2, 1e-6);
  }
  TURBINE_CUDA_CHECK(cudaStreamDestroy(stream));
}

// gemv_residual: residual += round_T(x W^T + bias) in place, and per 16-row tile the sum of squares
// of the updated rows; then gemv_norm with those tile sums (NormInput::stats) against the norm of
// the updated residual computed on the CPU. n not a multiple of 16 (a partial last tile), 1..8 tokens.
TEST_CASE_TEMPLATE("gemv_residual adds into the residual and leaves the tile sums gemv_norm reads", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_residual"));
  for (auto [hidden, k] : {std::pair{1000, 576}, std::pair{4096, 1536}, std::pair{72, 64}}) {
    const int tiles = (hidden + 15) / 16, stride = tiles + 3;
    const auto w = random_weights<T>(hidden, k, rng);
    auto d_w = upload_half<T>(w);
    const auto bias = random_half<T>(hidden, rng);
    auto d_bias = upload_half<T>(bias);
    const auto gamma = random_half<T>(hidden, rng, 0.5f, 1.5f);
    auto d_gamma = upload_half<T>(gamma);
    const int n2 = 520;  // the next GEMV (k = hidden)
    const auto w2 = random_weights<T>(n2, hidden, rng);
    auto d_w2 = upload_half<T>(w2);
    for (int tokens : {1, 3, 8}) {
      for (bool with_bias : {false, true}) {
        const auto x = random_half<T>(size_t(tokens) * k, rng);
        auto d_x = upload_half<T>(x);
        const auto res = random_floats(size_t(tokens) * hidden, rng, -2.f, 2.f);
        auto d_res = upload(res);
        cuda::DeviceBuffer<float> d_stats(size_t(tokens) * stride);
        poison(d_stats);
        cuda::ResidualOutput<T> out{d_res.data(), d_stats.data(), stride, with_bias ? d_bias.data() : nullptr};
        cuda::gemv_residual(d_w.data(), d_x.data(), out, tokens, hidden, k);
        sync_launch();
        // CPU: y rounded to T, then added in fp32
        std::vector<float> y(size_t(tokens) * hidden);
        cpu::linear(matrix_of<T>(w, hidden, k), x.values.data(), tokens, y.data(), with_bias ? bias.values.data() : nullptr);
        y = round_to<T>(y);
        std::vector<float> want(res);
        for (size_t i = 0; i < want.size(); ++i) want[i] += y[i];
        const std::string what = std::string("gemv_residual ") + HalfTraits<T>::name + " hidden " + std::to_string(hidden) +
                                 " tokens " + std::to_string(tokens) + (with_bias ? " bias" : "");
        const auto got = download_f32(d_res);
        expect_close(what + " residual", got, want, HalfTraits<T>::tol);
        std::vector<float> want_stats, got_stats;
        const auto st = download_f32(d_stats);
        for (int t = 0; t < tokens; ++t)
          for (int tile = 0; tile < tiles; ++tile) {
            double s = 0;
            for (int r = 16 * tile; r < std::min(hidden, 16 * tile + 16); ++r) s += double(want[size_t(t) * hidden + r]) * want[size_t(t) * hidden + r];
            want_stats.push_back(static_cast<float>(s));
            got_stats.push_back(st[size_t(t) * stride + tile]);
          }
        expect_close(what + " tile sums", got_stats, want_stats, 1e-3);
        // the next norm from the tile sums, against the CPU norm of the updated residual
        cuda::NormInput<T> in;
        in.residual = d_res.data();
        in.stats = d_stats.data();
        in.stats_stride = stride;
        in.gamma = d_gamma.data();
        in.eps = kEps;
        cuda::DeviceBuffer<T> d_y2(size_t(tokens) * n2);
        poison(d_y2);
        cuda::gemv_norm(d_w2.data(), in, static_cast<const T*>(nullptr), d_y2.data(), tokens, n2, hidden);
        sync_launch();
        const auto xn = norm_rounded<T>(got, gamma.values, tokens, hidden, kEps);
        std::vector<float> ref2(size_t(tokens) * n2);
        cpu::linear(matrix_of<T>(w2, n2, hidden), xn.data(), tokens, ref2.data(), nullptr);
        expect_close(what + " then gemv_norm from the tile sums", download_half(d_y2), ref2, HalfTraits<T>::tol);
      }
    }
  }
  // what the tile sums need, named
  std::mt19937 rng2(1);
  const auto w = random_weights<T>(64, 64, rng2);
  auto d_w = upload_half<T>(w);
  cuda::DeviceBuffer<T> d_x(64), d_y(64);
  cuda::DeviceBuffer<float> d_res(64), d_stats(4);
  CHECK_THROWS_WITH_AS(cuda::gemv_residual(d_w.data(), d_x.data(), cuda::ResidualOutput<T>{d_res.data(), d_stats.data(), 3, nullptr}, 1, 64, 64),
                       doctest::Contains("stats_stride 3 is less than the 4 tiles"), turbine::Error);
  const auto gamma = random_half<T>(64, rng2, 0.5f, 1.5f);
  auto d_gamma = upload_half<T>(gamma);
  cuda::NormInput<T> in;
  in.residual = d_res.data();
  in.stats = d_stats.data();
  in.stats_stride = 4;
  in.gamma = d_gamma.data();
  in.delta = d_x.data();
  CHECK_THROWS_WITH_AS(cuda::gemv_norm(d_w.data(), in, static_cast<const T*>(nullptr), d_y.data(), 1, 64, 64),
                       doctest::Contains("stats need a final residual"), turbine::Error);
}
