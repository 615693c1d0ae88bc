// W4A16 decode GEMV (backend/cuda/gemv_w4.cuh) against turbine::cpu::linear on the same 4-bit
// weights (I4G rows, the CPU's fused int4 dot), fresh random weights and activations, poisoned
// outputs, every kernel and launch configuration (W4Launch), sizes that are not multiples of the
// 16-row block or of the 128-input chunk, every group size; the fused forms (norm prologue, gate/up
// silu and rotary/KV-store epilogues) against the fp16 fused GEMVs on the dequantized weights; and
// the size checks.
#include <doctest/doctest.h>

#include <turbine/backend/cpu/linear.hpp>
#include <turbine/backend/cuda/gemv_w4.cuh>
#include <turbine/quant/int4_groups.hpp>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "kernel_test_util.cuh"
#include "w4_test_case.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

namespace {

// Every kernel and launch configuration the benchmark compares (gemv_w4's default among them).
std::vector<std::pair<std::string, cuda::W4Launch>> w4_launches() {
  using cuda::W4Kernel;
  std::vector<std::pair<std::string, cuda::W4Launch>> out = {{"default", {}}, {"base", {W4Kernel::kBase}}};
  for (int warps : {4, 8})
    for (int tiles : {1, 2, cuda::kW4MaxTiles})
      for (bool after : {true, false})
        out.emplace_back("stream w" + std::to_string(warps) + " t" + std::to_string(tiles) + (after ? "" : " scaled"),
                         cuda::W4Launch{W4Kernel::kStream, warps, tiles, after});
  if (cuda::pdl_available()) {  // x through the copy engine (sm_90 and later)
    for (auto [name, how] : std::vector<std::pair<std::string, cuda::W4Launch>>(out.begin(), out.end())) {
      how.x = cuda::W4X::kCopyEngine;
      out.emplace_back(name + " x copy engine", how);
    }
  }
  if (cuda::pdl_available()) out.emplace_back("ring", cuda::W4Launch{W4Kernel::kRing});  // where supported (below)
  for (int early : {0, 1, 3})  // ring slots before the wait: with each x source
    for (cuda::W4X x : {cuda::W4X::kLanes, cuda::W4X::kCopyEngine}) {
      if (x == cuda::W4X::kCopyEngine && !cuda::pdl_available()) continue;
      cuda::W4Launch how;
      how.early_slots = early;
      how.x = x;
      out.emplace_back("early " + std::to_string(early) + (x == cuda::W4X::kLanes ? " lanes" : " copy engine"), how);
    }
  return out;
}

}  // namespace

TEST_CASE("gemv_w4 matches the CPU int4 linear for 1..8 tokens, every group size and launch configuration") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_w4"));
  struct Shape {
    int n, k, group;
  };
  // k: SmolLM2 (576, 1536), Llama (4096, 14336), each launch configuration (2, 4, 8 warps), and k not
  // a multiple of 128 (lanes past k in the last chunk); n: not multiples of 16.
  const Shape shapes[] = {{960, 576, 64},   {3072, 576, 64}, {37, 576, 64},    {576, 1536, 64}, {1000, 4096, 128},
                          {9, 4096, 128},   {4100, 14336, 128}, {200, 96, 32}, {64, 160, 32},   {136, 1184, 32},
                          {520, 2112, 64},  {40, 640, 32},   {48, 1280, 64},   {72, 1536, 32},  {33, 2560, 128},
                          // enough 16-row tiles for the default's ring on up to 132 SMs, n not a multiple of 16
                          {17000, 1024, 128}};
  for (const Shape& s : shapes) {
    W4Case w = make_w4(s.n, s.k, s.group, rng);
    const auto bias = random_half<__half>(s.n, rng);
    auto d_bias = upload_half<__half>(bias);
    for (int tokens = 1; tokens <= 8; ++tokens) {
      for (bool with_bias : {false, true}) {
        const auto x = random_half<__half>(size_t(tokens) * s.k, rng);
        auto d_x = upload_half<__half>(x);
        cuda::DeviceBuffer<__half> d_y(size_t(tokens) * s.n);
        std::vector<float> ref(size_t(tokens) * s.n);
        cpu::linear(w.host, x.values.data(), tokens, ref.data(), with_bias ? bias.values.data() : nullptr);
        for (const auto& [name, how] : w4_launches()) {
          if (how.kernel == cuda::W4Kernel::kRing &&
              !cuda::detail::w4_ring_supported<cuda::detail::GemvStore<__half, __half>>(w.dev, tokens, d_x.data()))
            continue;  // the ring's limits (its own test case checks the refusal)
          poison(d_y);
          cuda::gemv_w4(w.dev, d_x.data(), with_bias ? d_bias.data() : nullptr, d_y.data(), tokens, nullptr, true, how);
          sync_launch();
          expect_close("gemv_w4 " + name + " tokens " + std::to_string(tokens) + " n " + std::to_string(s.n) + " k " +
                           std::to_string(s.k) + " g" + std::to_string(s.group) + (with_bias ? " bias" : ""),
                       download_half(d_y), ref, HalfTraits<__half>::tol);
        }
      }
    }
  }
}

// The ring kernel (W4Kernel::kRing, gemv_w4_ring.cuh) with the epilogues it takes besides the plain
// store (tested above against the CPU): gate/up silu and the residual add with tile sums, against the
// fp16 fused GEMVs on the dequantized weights; and its refusal of what it cannot run.
TEST_CASE("gemv_w4's ring kernel: gate/up silu and residual epilogues, and its limits") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  if (!cuda::pdl_available()) return skip("the ring kernel needs compute capability 9.0");
  std::mt19937 rng(fresh_seed("gemv_w4 ring"));
  const cuda::W4Launch ring{cuda::W4Kernel::kRing};
  for (auto [n, k] : {std::pair{2 * 8 * 37, 1024}, std::pair{2 * 8 * 301, 4096}, std::pair{208, 2048}}) {
    W4Case w = make_w4(n, k, 128, rng);
    cuda::DeviceBuffer<__half> w16(size_t(n) * k);
    cuda::w4_dequantize(w.dev, w16.data());
    const int inter = n / 2, rtiles = (n + 15) / 16;
    for (int tokens = 1; tokens <= 4; ++tokens) {
      const std::string what = " n " + std::to_string(n) + " k " + std::to_string(k) + " tokens " + std::to_string(tokens);
      auto d_x = upload_half<__half>(random_half<__half>(size_t(tokens) * k, rng));
      cuda::DeviceBuffer<__half> act_ref(size_t(tokens) * inter), act(size_t(tokens) * inter);
      cuda::gemv_gate_up_silu(w16.data(), d_x.data(), act_ref.data(), tokens, inter, k);
      poison(act);
      cuda::gemv_w4_gate_up_silu(w.dev, d_x.data(), act.data(), tokens, nullptr, true, ring);
      const auto res = random_floats(size_t(tokens) * n, rng, -2.f, 2.f);
      auto rr_ref = upload(res), rr = upload(res);
      cuda::DeviceBuffer<float> st_ref(size_t(tokens) * rtiles), st(size_t(tokens) * rtiles);
      poison(st);
      cuda::gemv_residual(w16.data(), d_x.data(), cuda::ResidualOutput<__half>{rr_ref.data(), st_ref.data(), rtiles, nullptr},
                          tokens, n, k);
      cuda::gemv_w4_residual(w.dev, d_x.data(), cuda::ResidualOutput<__half>{rr.data(), st.data(), rtiles, nullptr},
                             tokens, nullptr, true, ring);
      sync_launch();
      expect_close("ring gate_up_silu" + what, download_half(act), download_half(act_ref), HalfTraits<__half>::tol);
      expect_close("ring residual" + what, download(rr), download(rr_ref), 1e-3);
      expect_close("ring residual tile sums" + what, download(st), download(st_ref), 1e-3);
    }
  }
  {  // W too tall for one wave of blocks at any tile count (an LM head): several waves, checked on the CPU
    W4Case w = make_w4(130000, 1024, 128, rng);
    const auto xh = random_half<__half>(1024, rng);
    auto d_x = upload_half<__half>(xh);
    cuda::DeviceBuffer<float> y(130000);
    std::vector<float> ref(130000);
    cpu::linear(w.host, xh.values.data(), 1, ref.data(), nullptr);
    poison(y);
    cuda::gemv_w4(w.dev, d_x.data(), static_cast<const __half*>(nullptr), y.data(), 1, nullptr, true, ring);
    sync_launch();
    expect_close("ring n 130000 k 1024, fp32 out", download(y), ref, HalfTraits<__half>::tol);
  }
  // what it cannot run: group 64, k not a multiple of 1024, x over kW4RingMaxX, a norm prologue
  W4Case g64 = make_w4(64, 1024, 64, rng), k1536 = make_w4(64, 1536, 128, rng), big = make_w4(64, 4096, 128, rng);
  cuda::DeviceBuffer<__half> x(8 * 4096), y(8 * 64);
  for (const W4Case* c : {&g64, &k1536})
    CHECK_THROWS_WITH_AS(cuda::gemv_w4(c->dev, x.data(), nullptr, y.data(), 1, nullptr, true, ring),
                         doctest::Contains("W4Kernel::kRing needs"), Error);
  CHECK_THROWS_WITH_AS(cuda::gemv_w4(big.dev, x.data(), nullptr, y.data(), 5, nullptr, true, ring),
                       doctest::Contains("W4Kernel::kRing needs"), Error);
  cuda::NormInput<__half> in;
  auto d_res = upload(std::vector<float>(4096, 1.f));
  auto d_gamma = upload_half<__half>(random_half<__half>(4096, rng));
  in.residual = d_res.data();
  in.gamma = d_gamma.data();
  CHECK_THROWS_WITH_AS(cuda::gemv_w4_norm(big.dev, in, nullptr, y.data(), 1, nullptr, true, ring),
                       doctest::Contains("W4Kernel::kRing needs"), Error);
}

TEST_CASE("gemv_w4 names the supported sizes; w4_pack refuses weights that are not 4-bit") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_w4 sizes"));
  W4Case w = make_w4(32, 256, 64, rng);
  cuda::DeviceBuffer<__half> x(9 * 256), y(9 * 32);
  CHECK_THROWS_WITH_AS(cuda::gemv_w4(w.dev, x.data(), nullptr, y.data(), 9), doctest::Contains("9 tokens is not supported"),
                       Error);
  cuda::W4Matrix bad = w.dev;
  bad.group = 48;
  CHECK_THROWS_WITH_AS(cuda::gemv_w4(bad, x.data(), nullptr, y.data(), 1), doctest::Contains("bad sizes"), Error);
  const std::vector<float> f(64 * 32, 1.0f);
  const WeightMatrix plain{StorageType::F32, 32, 64, reinterpret_cast<const std::byte*>(f.data())};
  CHECK_THROWS_WITH_AS(cuda::w4_pack(plain), doctest::Contains("not group-wise 4-bit"), Error);
}

TEST_CASE("w4_dequantize gives the fp16 weights the CPU dequantizer gives, bit for bit") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("w4_dequantize"));
  for (int group : {32, 64, 128}) {
    const int n = 37, k = 3 * group + 128;
    W4Case w = make_w4(n, k - (k % group), group, rng);
    const int kk = w.dev.k;
    cuda::DeviceBuffer<__half> d_out(size_t(n) * kk);
    poison(d_out);
    cuda::w4_dequantize(w.dev, d_out.data());
    sync_launch();
    const auto got = download_half(d_out);
    std::vector<float> row(static_cast<size_t>(kk));
    int64_t mismatches = 0;
    for (int r = 0; r < n; ++r) {
      io::dequantize_row(w.host.type, w.host.row(r), row.data(), kk);
      for (int i = 0; i < kk; ++i) mismatches += got[size_t(r) * kk + i] != round_to<__half>({row[size_t(i)]})[0];
    }
    CAPTURE(group);
    CHECK(mismatches == 0);
  }
}

// The fused forms run the fp16 fused GEMVs' policies on the 4-bit stream: compared with those GEMVs
// (gemv_fused.cuh, tested against the CPU in gemv_fused.cu) on the same weights dequantized to fp16.
TEST_CASE("gemv_w4 fused forms match the fp16 fused GEMVs on the dequantized weights") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_w4 fused"));
  struct Shape {
    int heads, kv_heads, head_dim, k, group;
    bool bias;
  };
  const std::pair<std::string, cuda::W4Launch> launches[] = {
      {"default", {}},
      {"base", {cuda::W4Kernel::kBase}},
      {"stream w4 t2", {cuda::W4Kernel::kStream, 4, 2, true}},
      {"stream w8 t1 scaled", {cuda::W4Kernel::kStream, 8, 1, false}},
      {"x by the lanes", {.x = cuda::W4X::kLanes}},
      {"x by the copy engine", {.x = cuda::pdl_available() ? cuda::W4X::kCopyEngine : cuda::W4X::kLanes}}};
  for (const Shape& s : {Shape{9, 3, 64, 576, 64, false}, Shape{4, 1, 64, 256, 128, true}, Shape{8, 2, 128, 1024, 32, true},
                        Shape{4, 2, 64, 1536, 64, true}, Shape{2, 1, 64, 512, 128, false}}) {
    const int d = s.head_dim, q_rows = s.heads * d, kv_rows = s.kv_heads * d, n = q_rows + 2 * kv_rows, k = s.k;
    W4Case w = make_w4(n, k, s.group, rng);
    cuda::DeviceBuffer<__half> w16(size_t(n) * k);
    cuda::w4_dequantize(w.dev, w16.data());
    const auto gamma = random_half<__half>(k, rng, 0.5f, 1.5f);
    auto d_gamma = upload_half<__half>(gamma);
    const auto bias = random_half<__half>(n, rng);
    auto d_bias = upload_half<__half>(bias);
    std::vector<float> inv_freq(d / 2);
    for (int i = 0; i < d / 2; ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, float(2 * i) / float(d));
    auto d_inv_freq = upload(inv_freq);
    constexpr int kPositions = 40;
    for (int tokens = 1; tokens <= 8; ++tokens) {
      const size_t m = size_t(tokens) * k;
      auto d_res = upload(random_floats(m, rng, -2.f, 2.f));
      auto d_delta = upload_half<__half>(random_half<__half>(m, rng, -1.f, 1.f));
      auto d_x = upload_half<__half>(random_half<__half>(m, rng));
      cuda::DeviceBuffer<float> res_ref(m), res_got(m);
      std::vector<int> pos(tokens);
      for (auto& p : pos) p = int(rng() % kPositions);
      auto d_pos = upload(pos);
      // Two cache sets (reference and 4-bit), one cache pair per token, poisoned.
      std::vector<cuda::DeviceBuffer<__half>> caches;
      std::vector<__half*> ptrs[2][2];  // [ref | got][k | v]
      for (int set = 0; set < 2; ++set)
        for (int kv = 0; kv < 2; ++kv)
          for (int t = 0; t < tokens; ++t) {
            caches.emplace_back(size_t(kPositions) * kv_rows);
            poison(caches.back());
            ptrs[set][kv].push_back(caches.back().data());
          }
      cuda::DeviceBuffer<__half*> d_ptrs[2][2] = {{upload(ptrs[0][0]), upload(ptrs[0][1])},
                                                 {upload(ptrs[1][0]), upload(ptrs[1][1])}};
      auto norm_in = [&](float* out) {
        cuda::NormInput<__half> in;
        in.residual = d_res.data();
        in.delta = d_delta.data();
        in.gamma = d_gamma.data();
        in.eps = 1e-5f;
        in.residual_out = out;
        return in;
      };
      auto rope_out = [&](int set, __half* q) {
        cuda::RopeKvOutput<__half> o;
        o.q = q;
        o.k_caches = d_ptrs[set][0].data();
        o.v_caches = d_ptrs[set][1].data();
        o.positions = d_pos.data();
        o.inv_freq = d_inv_freq.data();
        o.bias = s.bias ? d_bias.data() : nullptr;
        o.heads = s.heads;
        o.kv_heads = s.kv_heads;
        o.head_dim = d;
        return o;
      };
      // References: the fp16 fused GEMVs.
      const int inter = n / 2;
      cuda::DeviceBuffer<__half> y_ref(size_t(tokens) * n), act_ref(size_t(tokens) * inter), actn_ref(size_t(tokens) * inter),
          q_ref(size_t(tokens) * q_rows);
      cuda::gemv_norm(w16.data(), norm_in(res_ref.data()), s.bias ? d_bias.data() : nullptr, y_ref.data(), tokens, n, k);
      cuda::gemv_gate_up_silu(w16.data(), d_x.data(), act_ref.data(), tokens, inter, k);
      cuda::gemv_norm_gate_up_silu(w16.data(), norm_in(nullptr), actn_ref.data(), tokens, inter, k);
      cuda::gemv_norm_rope(w16.data(), norm_in(nullptr), rope_out(0, q_ref.data()), tokens, k);
      sync_launch();
      const auto y_want = download_half(y_ref), act_want = download_half(act_ref), actn_want = download_half(actn_ref),
                 q_want = download_half(q_ref);
      auto cache_rows = [&](int set, int kv) {
        std::vector<float> out;
        for (int t = 0; t < tokens; ++t) {
          const auto h = download_half(caches[size_t((set * 2 + kv) * tokens + t)]);
          out.insert(out.end(), h.begin() + size_t(pos[t]) * kv_rows, h.begin() + size_t(pos[t] + 1) * kv_rows);
        }
        return out;
      };
      const auto k_want = cache_rows(0, 0), v_want = cache_rows(0, 1);
      // gemv_rope on x as stored (the fp16 reference into set 0 again)
      cuda::DeviceBuffer<__half> qx_ref(size_t(tokens) * q_rows);
      cuda::gemv_rope(w16.data(), d_x.data(), rope_out(0, qx_ref.data()), tokens, k);
      sync_launch();
      const auto qx_want = download_half(qx_ref), kx_want = cache_rows(0, 0), vx_want = cache_rows(0, 1);
      // gemv_residual: residual += x W^T and the tile sums, fp16 reference
      const int rtiles = (n + 15) / 16;
      const auto res_n = random_floats(size_t(tokens) * n, rng, -2.f, 2.f);
      auto rr_ref = upload(res_n);
      cuda::DeviceBuffer<float> st_ref(size_t(tokens) * rtiles);
      const __half* rbias = s.bias ? d_bias.data() : nullptr;
      cuda::gemv_residual(w16.data(), d_x.data(), cuda::ResidualOutput<__half>{rr_ref.data(), st_ref.data(), rtiles, rbias},
                          tokens, n, k);
      sync_launch();
      const auto rr_want = download(rr_ref), st_want = download(st_ref);
      // The norm from tile sums (NormInput::stats: the large-model chain), rows padded to a multiple
      // of 4 floats plus 4 (the copy engine's form needs whole 16-byte rows)
      const int ktiles = (k + 15) / 16, sstride = (ktiles + 3) / 4 * 4 + 4;
      std::vector<float> res_host = download(d_res), sums(size_t(tokens) * sstride, 0.f);
      for (int t = 0; t < tokens; ++t)
        for (int i = 0; i < k; ++i) {
          const float v = res_host[size_t(t) * k + i];
          sums[size_t(t) * sstride + i / 16] += v * v;
        }
      auto d_sums = upload(sums);
      cuda::NormInput<__half> stats_in;
      stats_in.residual = d_res.data();
      stats_in.stats = d_sums.data();
      stats_in.stats_stride = sstride;
      stats_in.gamma = d_gamma.data();
      stats_in.eps = 1e-5f;
      cuda::DeviceBuffer<__half> ys_ref(size_t(tokens) * n);
      cuda::gemv_norm(w16.data(), stats_in, s.bias ? d_bias.data() : nullptr, ys_ref.data(), tokens, n, k);
      sync_launch();
      const auto ys_want = download_half(ys_ref);
      for (const auto& [name, how] : launches) {
        const std::string what = " " + name + " n " + std::to_string(n) + " k " + std::to_string(k) + " g" +
                                 std::to_string(s.group) + " tokens " + std::to_string(tokens);
        cuda::DeviceBuffer<__half> y(size_t(tokens) * n), act(size_t(tokens) * inter), actn(size_t(tokens) * inter),
            q(size_t(tokens) * q_rows);
        for (auto* b : {&y, &act, &actn, &q}) poison(*b);
        poison(res_got);
        cuda::gemv_w4_norm(w.dev, norm_in(res_got.data()), s.bias ? d_bias.data() : nullptr, y.data(), tokens, nullptr,
                           true, how);
        cuda::gemv_w4_gate_up_silu(w.dev, d_x.data(), act.data(), tokens, nullptr, true, how);
        cuda::gemv_w4_norm_gate_up_silu(w.dev, norm_in(nullptr), actn.data(), tokens, nullptr, true, how);
        cuda::gemv_w4_norm_rope(w.dev, norm_in(nullptr), rope_out(1, q.data()), tokens, nullptr, true, how);
        sync_launch();
        expect_close("gemv_w4_norm" + what, download_half(y), y_want, HalfTraits<__half>::tol);
        expect_close("gemv_w4_norm residual_out" + what, download(res_got), download(res_ref), 1e-6);
        expect_close("gemv_w4_gate_up_silu" + what, download_half(act), act_want, HalfTraits<__half>::tol);
        expect_close("gemv_w4_norm_gate_up_silu" + what, download_half(actn), actn_want, HalfTraits<__half>::tol);
        expect_close("gemv_w4_norm_rope q" + what, download_half(q), q_want, HalfTraits<__half>::tol);
        expect_close("gemv_w4_norm_rope k cache" + what, cache_rows(1, 0), k_want, HalfTraits<__half>::tol);
        expect_close("gemv_w4_norm_rope v cache" + what, cache_rows(1, 1), v_want, HalfTraits<__half>::tol);
        auto rr = upload(res_n);
        cuda::DeviceBuffer<float> st(size_t(tokens) * rtiles);
        poison(st);
        cuda::gemv_w4_residual(w.dev, d_x.data(), cuda::ResidualOutput<__half>{rr.data(), st.data(), rtiles, rbias}, tokens,
                               nullptr, true, how);
        sync_launch();
        expect_close("gemv_w4_residual" + what, download(rr), rr_want, 1e-3);
        expect_close("gemv_w4_residual tile sums" + what, download(st), st_want, 1e-3);
        cuda::DeviceBuffer<__half> ys(size_t(tokens) * n);
        poison(ys);
        cuda::gemv_w4_norm(w.dev, stats_in, s.bias ? d_bias.data() : nullptr, ys.data(), tokens, nullptr, true, how);
        sync_launch();
        expect_close("gemv_w4_norm from tile sums" + what, download_half(ys), ys_want, HalfTraits<__half>::tol);
        for (int kv = 0; kv < 2; ++kv)
          for (int t = 0; t < tokens; ++t) poison(caches[size_t((2 + kv) * tokens + t)]);
        poison(q);
        cuda::gemv_w4_rope(w.dev, d_x.data(), rope_out(1, q.data()), tokens, nullptr, true, how);
        sync_launch();
        expect_close("gemv_w4_rope q" + what, download_half(q), qx_want, HalfTraits<__half>::tol);
        expect_close("gemv_w4_rope k cache" + what, cache_rows(1, 0), kx_want, HalfTraits<__half>::tol);
        expect_close("gemv_w4_rope v cache" + what, cache_rows(1, 1), vx_want, HalfTraits<__half>::tol);
        for (int kv = 0; kv < 2; ++kv)  // the next launch configuration writes the same rows again
          for (int t = 0; t < tokens; ++t) poison(caches[size_t((2 + kv) * tokens + t)]);
      }
    }
  }
}
