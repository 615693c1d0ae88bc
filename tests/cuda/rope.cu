// Fused bias + rotary + KV-cache store against turbine::cpu::apply_rope with turbine::rope_inv_freq.
#include <doctest/doctest.h>

#include <algorithm>

#include <turbine/backend/cpu/rope.hpp>
#include <turbine/backend/cuda/rope.cuh>
#include <turbine/layers/rotary.hpp>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

namespace {

struct Shape {
  const char* model;
  int heads, kv_heads, head_dim;
  float theta;
  bool llama3_scaling;
};

constexpr Shape kShapes[] = {
    {"smollm2-135m", 9, 3, 64, 100000.f, false},
    {"llama-3-8b", 32, 8, 128, 500000.f, true},
};

}  // namespace

TEST_CASE_TEMPLATE("rope_qkv rotates q in place and stores rotated k and v in the cache", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("rope_qkv"));
  const char* tn = HalfTraits<T>::name;
  for (const Shape& s : kShapes) {
    ModelConfig cfg;
    cfg.head_dim = s.head_dim;
    cfg.rope_theta = s.theta;
    if (s.llama3_scaling) {
      cfg.rope_scaling.kind = RopeScaling::Kind::Llama3;
      cfg.rope_scaling.factor = 8.f;
    }
    const std::vector<float> inv_freq = rope_inv_freq(cfg, 8192);
    auto d_inv = upload(inv_freq);
    const int hd = s.head_dim, qd = s.heads * hd, kvd = s.kv_heads * hd;
    for (int tokens : {1, 3, 7, 8, 65}) {
      for (bool fused : {true, false}) {
        for (bool bias : {false, true}) {
          const int pos0 = std::uniform_int_distribution<int>(0, 8000)(rng);
          const int cap = pos0 + tokens + 3;
          const int row = fused ? qd + 2 * kvd : 0;
          // Inputs: one fused [tokens, qd + 2 kvd] buffer, or three separate ones.
          const auto qkv = random_half<T>(size_t(tokens) * (qd + 2 * kvd), rng, -2.f, 2.f);
          auto d_qkv = upload_half<T>(qkv);
          HalfHost qh, kh, vh;
          for (int t = 0; t < tokens; ++t) {
            const size_t base = size_t(t) * (qd + 2 * kvd);
            for (int i = 0; i < qd + 2 * kvd; ++i) {
              HalfHost& dst = i < qd ? qh : (i < qd + kvd ? kh : vh);
              dst.bits.push_back(qkv.bits[base + i]);
              dst.values.push_back(qkv.values[base + i]);
            }
          }
          auto d_q = upload_half<T>(qh);
          auto d_k = upload_half<T>(kh);
          auto d_v = upload_half<T>(vh);
          const auto qb = random_half<T>(qd, rng, -0.5f, 0.5f), kb = random_half<T>(kvd, rng, -0.5f, 0.5f),
                     vb = random_half<T>(kvd, rng, -0.5f, 0.5f);
          auto d_qb = upload_half<T>(qb);
          auto d_kb = upload_half<T>(kb);
          auto d_vb = upload_half<T>(vb);
          cuda::DeviceBuffer<T> k_cache(size_t(cap) * kvd), v_cache(size_t(cap) * kvd);
          poison(k_cache);
          poison(v_cache);

          cuda::RopeQkv<T> p;
          if (fused) {
            p.q = d_qkv.data();
            p.k = d_qkv.data() + qd;
            p.v = d_qkv.data() + qd + kvd;
            p.q_stride = p.k_stride = p.v_stride = row;
          } else {
            p.q = d_q.data();
            p.k = d_k.data();
            p.v = d_v.data();
            p.q_stride = qd;
            p.k_stride = p.v_stride = kvd;
          }
          if (bias) {
            p.q_bias = d_qb.data();
            p.k_bias = d_kb.data();
            p.v_bias = d_vb.data();
          }
          p.k_cache = k_cache.data();
          p.v_cache = v_cache.data();
          p.inv_freq = d_inv.data();
          p.tokens = tokens;
          p.heads = s.heads;
          p.kv_heads = s.kv_heads;
          p.head_dim = hd;
          p.pos0 = pos0;
          p.cache_positions = cap;
          cuda::rope_qkv(p);
          sync_launch();

          // Reference in fp32 from the same rounded inputs.
          std::vector<float> qr = qh.values, kr = kh.values, vr = vh.values;
          if (bias) {
            for (int t = 0; t < tokens; ++t) {
              for (int i = 0; i < qd; ++i) qr[size_t(t) * qd + i] += qb.values[i];
              for (int i = 0; i < kvd; ++i) kr[size_t(t) * kvd + i] += kb.values[i];
              for (int i = 0; i < kvd; ++i) vr[size_t(t) * kvd + i] += vb.values[i];
            }
          }
          cpu::apply_rope(qr.data(), tokens, s.heads, hd, pos0, inv_freq);
          cpu::apply_rope(kr.data(), tokens, s.kv_heads, hd, pos0, inv_freq);

          std::vector<float> q_out;
          if (fused) {
            const auto all = download_half(d_qkv);
            for (int t = 0; t < tokens; ++t)
              for (int i = 0; i < qd; ++i) q_out.push_back(all[size_t(t) * row + i]);
            // k and v slices of the fused buffer are read only.
            bool kv_untouched = true;
            for (int t = 0; t < tokens; ++t)
              for (int i = qd; i < row; ++i)
                kv_untouched &= all[size_t(t) * row + i] == qkv.values[size_t(t) * row + i];
            CHECK(kv_untouched);
          } else {
            q_out = download_half(d_q);
          }
          const auto kc = download_half(k_cache), vc = download_half(v_cache);
          const std::vector<float> k_out(kc.begin() + size_t(pos0) * kvd, kc.begin() + size_t(pos0 + tokens) * kvd);
          const std::vector<float> v_out(vc.begin() + size_t(pos0) * kvd, vc.begin() + size_t(pos0 + tokens) * kvd);
          // Rows outside pos0 .. pos0 + tokens - 1 keep their poison.
          bool others_untouched = true;
          for (size_t i = 0; i < kc.size(); ++i) {
            const size_t pos = i / kvd;
            if (pos < size_t(pos0) || pos >= size_t(pos0 + tokens))
              others_untouched &= std::isnan(kc[i]) && std::isnan(vc[i]);
          }
          CHECK(others_untouched);
          const std::string what = std::string(tn) + " " + s.model + " tokens " + std::to_string(tokens) +
                                   (fused ? " fused" : " separate") + (bias ? " bias" : "") + " pos0 " +
                                   std::to_string(pos0);
          expect_close("rope q " + what, q_out, qr, HalfTraits<T>::tol);
          expect_close("rope k cache " + what, k_out, kr, HalfTraits<T>::tol);
          expect_close("v cache " + what, v_out, vr, HalfTraits<T>::tol);
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("rope_qkv stores k and v of a paged cache at the rows its block table names", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("rope_qkv paged"));
  const Shape& s = kShapes[0];
  ModelConfig cfg;
  cfg.head_dim = s.head_dim;
  cfg.rope_theta = s.theta;
  auto d_inv = upload(rope_inv_freq(cfg, 8192));
  const int hd = s.head_dim, qd = s.heads * hd, kvd = s.kv_heads * hd, row = qd + 2 * kvd;
  for (int block : {16, 64}) {
    for (int tokens : {1, 7, 65, 200}) {
      const int pos0 = std::uniform_int_distribution<int>(0, 300)(rng), cap = pos0 + tokens;
      const int blocks = (cap + block - 1) / block, pool = blocks + 2;
      std::vector<int> order(static_cast<size_t>(pool));
      for (int i = 0; i < pool; ++i) order[static_cast<size_t>(i)] = i;
      std::shuffle(order.begin(), order.end(), rng);
      order.resize(static_cast<size_t>(blocks));
      cuda::DeviceBuffer<int> d_table(order.size());
      TURBINE_CUDA_CHECK(cudaMemcpy(d_table.data(), order.data(), d_table.bytes(), cudaMemcpyHostToDevice));
      const auto qkv = random_half<T>(size_t(tokens) * row, rng, -2.f, 2.f);
      // The same tokens into a contiguous cache and into a paged one; the paged rows must match.
      cuda::DeviceBuffer<T> flat_k(size_t(cap) * kvd), flat_v(size_t(cap) * kvd);
      cuda::DeviceBuffer<T> pool_k(size_t(pool) * block * kvd), pool_v(size_t(pool) * block * kvd);
      for (auto* b : {&flat_k, &flat_v, &pool_k, &pool_v}) poison(*b);
      std::vector<float> q_flat, q_paged;
      for (bool paged : {false, true}) {
        auto d_qkv = upload_half<T>(qkv);
        cuda::RopeQkv<T> p;
        p.q = d_qkv.data();
        p.k = d_qkv.data() + qd;
        p.v = d_qkv.data() + qd + kvd;
        p.q_stride = p.k_stride = p.v_stride = row;
        p.k_cache = paged ? pool_k.data() : flat_k.data();
        p.v_cache = paged ? pool_v.data() : flat_v.data();
        if (paged) p.table = {d_table.data(), blocks, cuda::block_shift(block)};
        p.inv_freq = d_inv.data();
        p.tokens = tokens;
        p.heads = s.heads;
        p.kv_heads = s.kv_heads;
        p.head_dim = hd;
        p.pos0 = pos0;
        p.cache_positions = cap;
        cuda::rope_qkv(p);
        sync_launch();
        (paged ? q_paged : q_flat) = download_half(d_qkv);
      }
      CHECK(q_paged == q_flat);
      const auto fk = download_half(flat_k), fv = download_half(flat_v), pk = download_half(pool_k), pv = download_half(pool_v);
      bool same = true, untouched = true;
      std::vector<bool> written(size_t(pool) * block, false);
      for (int pos = pos0; pos < cap; ++pos) {
        const size_t r = size_t(order[size_t(pos / block)]) * block + pos % block;
        written[r] = true;
        for (int i = 0; i < kvd; ++i)
          same &= pk[r * kvd + i] == fk[size_t(pos) * kvd + i] && pv[r * kvd + i] == fv[size_t(pos) * kvd + i];
      }
      for (size_t r = 0; r < written.size(); ++r)
        if (!written[r])
          for (int i = 0; i < kvd; ++i) untouched &= std::isnan(pk[r * kvd + i]) && std::isnan(pv[r * kvd + i]);
      INFO(HalfTraits<T>::name, " block ", block, " tokens ", tokens, " pos0 ", pos0);
      CHECK(same);
      CHECK(untouched);
    }
  }
}

TEST_CASE("rope_qkv names the supported head_dim and refuses positions past the cache") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  cuda::DeviceBuffer<__half> buf(4096);
  cuda::DeviceBuffer<float> inv(64);
  cuda::RopeQkv<__half> p;
  p.q = buf.data();
  p.k = buf.data();
  p.v = buf.data();
  p.k_cache = buf.data();
  p.v_cache = buf.data();
  p.inv_freq = inv.data();
  p.tokens = 1;
  p.heads = 1;
  p.kv_heads = 1;
  p.head_dim = 96;
  p.q_stride = p.k_stride = p.v_stride = 96;
  p.cache_positions = 4;
  CHECK_THROWS_WITH_AS(cuda::rope_qkv(p), doctest::Contains("head_dim 96 is not supported (supported: 64, 128)"),
                       turbine::Error);
  p.head_dim = 64;
  p.pos0 = 4;
  CHECK_THROWS_WITH_AS(cuda::rope_qkv(p), doctest::Contains("do not fit in a KV cache of 4 positions"), turbine::Error);
}
