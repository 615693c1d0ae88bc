// W4A16 tensor-core GEMM (backend/cuda/gemm_w4.cuh) against the CPU product of x with the
// dequantized fp16 weights (double sums), fresh random 4-bit weights and activations, poisoned
// outputs; token counts on both sides of every token tile (16, 32, 64, 128), row counts that are not
// multiples of the 128-row block, k that is not a multiple of the 256-input step (SmolLM2's 576), k
// split over blocks (few rows, long k) and not, every group size, with and without bias; and against
// the path it replaces (w4_dequantize + cuBLAS) at Llama-3-8B's o_proj shape; every variant of the
// staged and wgmma kernels (those gemm_w4 dispatches to), k split into as many parts as fit and not;
// and the two-column GEMV path it takes at 9..16 tokens for a small W, in both launch shapes.
#include <doctest/doctest.h>

#include <turbine/backend/cuda/gemm.cuh>
#include <turbine/backend/cuda/gemm_w4.cuh>
#include <turbine/io/ggml_quants.hpp>
#include <turbine/quant/int4_groups.hpp>

#include "kernel_test_util.cuh"
#include "w4_test_case.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

namespace {

// ref[t, r] = sum_k x[t, k] w[r, k] (+ bias[r]) in double.
std::vector<float> reference(const W4Case& w, const std::vector<float>& x, const float* bias, int tokens) {
  const int n = w.dev.n, k = w.dev.k;
  std::vector<float> ref(size_t(tokens) * n);
  default_pool().parallel_for(n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* wr = w.w.data() + size_t(r) * k;
      for (int t = 0; t < tokens; ++t) {
        const float* xt = x.data() + size_t(t) * k;
        double s = bias ? bias[r] : 0.0;
        for (int i = 0; i < k; ++i) s += double(xt[i]) * double(wr[i]);
        ref[size_t(t) * n + size_t(r)] = static_cast<float>(s);
      }
    }
  }, 8);
  return ref;
}

constexpr double kTol = 2e-3;

}  // namespace

TEST_CASE("gemm_w4 matches the CPU product with the dequantized weights for 9..300 tokens") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm_w4"));
  struct Shape {
    int n, k, group;
  };
  // SmolLM2 (k 576, group 64: two full 256-input steps and a 64-input one); Llama k (4096, 14336)
  // with few rows (k split over many blocks) and odd n; group 32 with n over 4096 (no split); k below
  // one step; k not a multiple of 128.
  const Shape shapes[] = {{960, 576, 64},   {333, 4096, 128}, {136, 14336, 128}, {520, 2112, 64},
                          {4100, 1184, 32}, {200, 96, 32},    {9, 160, 32},      {1536, 576, 64}};
  int combo = 0;
  for (const Shape& s : shapes) {
    W4Case w = make_w4(s.n, s.k, s.group, rng);
    const auto bias = random_half<__half>(s.n, rng);
    auto d_bias = upload_half<__half>(bias);
    for (int tokens : {1, 8, 9, 16, 17, 33, 64, 100, 128, 256, 300}) {  // 1, 8: any count is computed
      const bool with_bias = (combo++ % 2) == 0;  // alternate: every shape and tile sees both
      const auto x = random_half<__half>(size_t(tokens) * s.k, rng);
      auto d_x = upload_half<__half>(x);
      cuda::DeviceBuffer<__half> d_y(size_t(tokens) * s.n);
      poison(d_y);
      cuda::gemm_w4(w.dev, d_x.data(), with_bias ? d_bias.data() : nullptr, d_y.data(), tokens);
      sync_launch();
      const auto ref = reference(w, x.values, with_bias ? bias.values.data() : nullptr, tokens);
      expect_close("gemm_w4 tokens " + std::to_string(tokens) + " n " + std::to_string(s.n) + " k " +
                       std::to_string(s.k) + " g" + std::to_string(s.group) + (with_bias ? " bias" : ""),
                   download_half(d_y), ref, kTol);
    }
  }
}

TEST_CASE("gemm_w4 at k too long for a 128- or 64-token tile's permuted x takes a smaller tile or the staged kernel") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm_w4 long k"));
  namespace wd = cuda::detail;
  // 32896: one chunk past what a 128-token tile's images may take (64-token tiles run); 65664: past
  // a 64-token tile's too (32-token tiles run). Few rows keep the CPU reference cheap.
  static_assert(!wd::w4w_bulk_fits<128>(32896) && wd::w4w_bulk_fits<64>(32896));
  static_assert(!wd::w4w_bulk_fits<64>(65664) && wd::w4w_bulk_fits<32>(65664));
  for (int k : {32896, 65664}) {
    W4Case w = make_w4(24, k, 128, rng);
    const int tokens = 100;
    const auto x = random_half<__half>(size_t(tokens) * k, rng);
    auto d_x = upload_half<__half>(x);
    cuda::DeviceBuffer<__half> d_y(size_t(tokens) * 24);
    poison(d_y);
    cuda::gemm_w4(w.dev, d_x.data(), nullptr, d_y.data(), tokens);
    sync_launch();
    expect_close("gemm_w4 tokens 100 n 24 k " + std::to_string(k), download_half(d_y),
                 reference(w, x.values, nullptr, tokens), kTol);
  }
}

TEST_CASE("gemm_w4's two-column GEMV path (9..16 tokens, W's tiles in one wave) in both its launch shapes") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm_w4_two_columns"));
  // The launch shape follows from W's 16-row tiles against the SMs' resident blocks: 8 warps a tile
  // where they fit, else 4 warps, else not taken. The row counts come from this GPU's SM count and
  // occupancy, so every shape is reached on any device; odd n leaves a partial last tile.
  const int sms = cuda::device_sm_count();
  for (int group : {32, 64, 128}) {
    const bool after = group == 128;  // scales applied after the sum: the other instantiations
    const int b8 = after ? cuda::detail::w4_two_column_blocks_per_sm<8, true, 2>()
                         : cuda::detail::w4_two_column_blocks_per_sm<8, false, 2>();
    const int b4 = after ? cuda::detail::w4_two_column_blocks_per_sm<4, true, 4>()
                         : cuda::detail::w4_two_column_blocks_per_sm<4, false, 4>();
    const int most = 16 * sms * std::max(b8, b4);
    struct Shape {
      int n;
      bool taken;
    };
    const Shape shapes[] = {{16 * sms * b8 - 5, true}, {most, true}, {most + 16, false}};
    for (const Shape& s : shapes) {
      const int k = 3 * group;
      W4Case w = make_w4(s.n, k, group, rng);
      const auto bias = random_half<__half>(s.n, rng);
      auto d_bias = upload_half<__half>(bias);
      for (int tokens : {9, 13, 16}) {
        const bool with_bias = tokens != 13;
        const auto x = random_half<__half>(size_t(tokens) * k, rng);
        auto d_x = upload_half<__half>(x);
        cuda::DeviceBuffer<__half> d_y(size_t(tokens) * s.n);
        poison(d_y);
        const bool taken = cuda::detail::gemv_w4_two_columns(
            w.dev, d_x.data(), with_bias ? d_bias.data() : nullptr, d_y.data(), tokens, nullptr);
        CAPTURE(s.n);
        CAPTURE(group);
        CHECK(taken == s.taken);
        if (!taken) continue;
        sync_launch();
        expect_close("two-column gemv_w4 tokens " + std::to_string(tokens) + " n " + std::to_string(s.n) + " k " +
                         std::to_string(k) + " g" + std::to_string(group) + " (8-warp blocks an SM " +
                         std::to_string(b8) + ", 4-warp " + std::to_string(b4) + ")",
                     download_half(d_y), reference(w, x.values, with_bias ? bias.values.data() : nullptr, tokens),
                     kTol);
      }
    }
  }
}

TEST_CASE("every staged and wgmma gemm_w4 variant matches the CPU product, split over k and not") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm_w4 staged variants"));
  namespace wd = cuda::detail;
  // The variants bench_cuda_kernels times (gemm_w4_variant/...): warp tiles of 1/2/4 row tiles x
  // 2/4/8 token columns, one or two token groups per block, 3 or 4 stages; and the wgmma kernel at
  // 16, 32, 64 and 128 tokens a block, with x by 4-byte copies or permuted and loaded by bulk copies
  // (_xb, the GEMM launched programmatically after the permutation; _tf the token tiles fastest in
  // the grid, _2b registers for two blocks an SM).
  std::vector<std::pair<std::string, wd::W4sLaunchFn>> variants;
  wd::for_each_w4s_variant([&](const char* name, wd::W4sLaunchFn fn) { variants.emplace_back(name, fn); });
  struct Shape {
    int n, k, group;
  };
  // k split over many blocks (few rows, long k), k below one chunk, k not a multiple of the chunk,
  // n below one row tile, n not a multiple of any block's rows.
  // And k of 1152 / 2304 at groups 32 / 64 (9 and 18 chunks: an odd chunk count for the wgmma
  // kernel's two A register sets).
  const Shape shapes[] = {{333, 4096, 128}, {200, 96, 32}, {520, 2112, 64}, {9, 160, 32}, {1100, 576, 64},
                          {300, 1152, 32},  {260, 2304, 64}};
  int combo = 0;
  for (const Shape& s : shapes) {
    W4Case w = make_w4(s.n, s.k, s.group, rng);
    const auto bias = random_half<__half>(s.n, rng);
    auto d_bias = upload_half<__half>(bias);
    for (int tokens : {9, 16, 33, 64, 100}) {
      const auto x = random_half<__half>(size_t(tokens) * s.k, rng);
      auto d_x = upload_half<__half>(x);
      const auto ref_bias = reference(w, x.values, bias.values.data(), tokens);
      const auto ref_plain = reference(w, x.values, nullptr, tokens);
      cuda::DeviceBuffer<__half> d_y(size_t(tokens) * s.n);
      for (const auto& [name, fn] : variants) {
        const bool with_bias = (combo % 2) == 0;
        const int min_chunks = (combo++ % 3) == 0 ? 1 : wd::kW4sMinChunks;  // 1: as many splits as fit
        poison(d_y);
        fn(w.dev, d_x.data(), with_bias ? d_bias.data() : nullptr, d_y.data(), tokens, nullptr, nullptr, min_chunks);
        sync_launch();
        expect_close(std::string("gemm_w4 staged ") + name + " tokens " + std::to_string(tokens) + " n " +
                         std::to_string(s.n) + " k " + std::to_string(s.k) + " g" + std::to_string(s.group) +
                         " min_chunks " + std::to_string(min_chunks) + (with_bias ? " bias" : ""),
                     download_half(d_y), with_bias ? ref_bias : ref_plain, kTol);
      }
    }
  }
}

TEST_CASE("the wgmma variant runs its own kernel on Hopper (this build is sm_90a), not the fallback") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  int dev = 0, major = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  if (major != 9) return skip("wgmma needs sm_90a; on this GPU the wg* variants and gemm_w4 (but its two-column GEMV) run the staged kernel");
  CHECK(cuda::detail::w4w_available());  // so the tests here checked the wgmma kernel (gemm_w4's own on sm_90a)
}

TEST_CASE("gemm_w4 gives the same answer twice and agrees with w4_dequantize + cuBLAS at a Llama-3-8B shape") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm_w4 vs cublas"));
  cuda::Gemm gemm;
  W4Case w = make_w4(4096, 4096, 128, rng);
  cuda::DeviceBuffer<__half> d_w(size_t(4096) * 4096);
  cuda::w4_dequantize(w.dev, d_w.data());
  sync_launch();
  const auto bias = random_half<__half>(4096, rng);
  auto d_bias = upload_half<__half>(bias);
  for (int tokens : {9, 16, 64, 256}) {
    const auto x = random_half<__half>(size_t(tokens) * 4096, rng);
    auto d_x = upload_half<__half>(x);
    cuda::DeviceBuffer<__half> d_y(size_t(tokens) * 4096), d_y2(size_t(tokens) * 4096), d_ref(size_t(tokens) * 4096);
    poison(d_y);
    poison(d_y2);
    poison(d_ref);
    cuda::gemm_w4(w.dev, d_x.data(), d_bias.data(), d_y.data(), tokens);
    sync_launch();
    cuda::gemm_w4(w.dev, d_x.data(), d_bias.data(), d_y2.data(), tokens);  // split-k counters were reset
    sync_launch();
    gemm(d_x.data(), static_cast<const __half*>(d_w.data()), static_cast<const __half*>(d_bias.data()), d_ref.data(),
         tokens, 4096, 4096);
    sync_launch();
    const auto got = download_half(d_y), got2 = download_half(d_y2);
    CAPTURE(tokens);
    CHECK(got == got2);  // deterministic: the splits are added in a fixed order
    expect_close("gemm_w4 vs w4_dequantize + cuBLAS, tokens " + std::to_string(tokens), got, download_half(d_ref),
                 kTol);
    if (tokens == 16) {
      expect_close("gemm_w4 vs CPU, 4096 x 4096, tokens 16", got,
                   reference(w, x.values, bias.values.data(), tokens), kTol);
    }
  }
}

TEST_CASE("gemm_w4 calls on two streams at once, each with its own workspace, give their results alone") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm_w4 two streams"));
  // Few rows and a long k: both calls split k, so a shared workspace would mix their partial sums.
  const int n = 256, k = 14336, tokens = 16;
  W4Case a = make_w4(n, k, 128, rng), b = make_w4(n, k, 128, rng);
  const auto xa = random_half<__half>(size_t(tokens) * k, rng), xb = random_half<__half>(size_t(tokens) * k, rng);
  auto d_xa = upload_half<__half>(xa), d_xb = upload_half<__half>(xb);
  cuda::DeviceBuffer<__half> ya(size_t(tokens) * n), yb(size_t(tokens) * n);
  const cuda::GemmW4Workspace wa, wb;
  cudaStream_t sa = nullptr, sb = nullptr;
  TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&sa, cudaStreamNonBlocking));
  TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&sb, cudaStreamNonBlocking));
  const auto ref_a = reference(a, xa.values, nullptr, tokens), ref_b = reference(b, xb.values, nullptr, tokens);
  for (int round = 0; round < 20; ++round) {
    poison(ya);
    poison(yb);
    sync_launch();
    for (int i = 0; i < 8; ++i) {  // interleaved launches, so the two streams' kernels overlap
      cuda::gemm_w4(a.dev, d_xa.data(), nullptr, ya.data(), tokens, sa, &wa);
      cuda::gemm_w4(b.dev, d_xb.data(), nullptr, yb.data(), tokens, sb, &wb);
    }
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(sa));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(sb));
    sync_launch();
    expect_close("gemm_w4 on stream a", download_half(ya), ref_a, kTol);
    expect_close("gemm_w4 on stream b", download_half(yb), ref_b, kTol);
  }
  TURBINE_CUDA_CHECK(cudaStreamDestroy(sa));
  TURBINE_CUDA_CHECK(cudaStreamDestroy(sb));
}

TEST_CASE("the wgmma kernel's bulk-copy form takes more tokens than its x buffer holds, in slabs") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm_w4 bulk slabs"));
  namespace wd = cuda::detail;
  // At k 16384 a 64-token tile of permuted x is 128 stages; the buffer holds a whole number of
  // tiles, so this count needs a second slab, whose last tile is partial. Once through the shared
  // workspace, once through a workspace of the caller's (each has its own x buffer).
  const int n = 136, k = 16384;
  const int slab =
      static_cast<int>(wd::kW4wXPermBytes / (size_t(k / wd::kW4wChunk) * wd::W4wTile<64>::kStageBytes)) * 64;
  const int tokens = slab + 37;
  W4Case w = make_w4(n, k, 128, rng);
  const auto bias = random_half<__half>(n, rng);
  auto d_bias = upload_half<__half>(bias);
  const auto x = random_half<__half>(size_t(tokens) * k, rng);
  auto d_x = upload_half<__half>(x);
  const auto ref = reference(w, x.values, bias.values.data(), tokens);
  const cuda::GemmW4Workspace own;
  cuda::DeviceBuffer<__half> d_y(size_t(tokens) * n);
  for (const wd::W4gWorkspace* ws : {static_cast<const wd::W4gWorkspace*>(nullptr), &own.view()}) {
    poison(d_y);
    wd::launch_gemm_w4_wgmma_bulk<64, 2>(w.dev, d_x.data(), d_bias.data(), d_y.data(), tokens, nullptr, ws,
                                         wd::kW4sMinChunks);
    sync_launch();
    expect_close(std::string("wg64_d2_xb in slabs of ") + std::to_string(slab) + " tokens, tokens " +
                     std::to_string(tokens) + (ws ? ", own workspace" : ", shared workspace"),
                 download_half(d_y), ref, kTol);
  }
}

TEST_CASE("gemm_w4 names the supported sizes") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm_w4 sizes"));
  W4Case w = make_w4(32, 256, 64, rng);
  cuda::DeviceBuffer<__half> x(16 * 256), y(16 * 32);
  cuda::W4Matrix bad = w.dev;
  bad.group = 48;
  CHECK_THROWS_WITH_AS(cuda::gemm_w4(bad, x.data(), nullptr, y.data(), 16), doctest::Contains("bad sizes"), Error);
  CHECK_THROWS_WITH_AS(cuda::gemm_w4(w.dev, x.data(), nullptr, y.data(), -1), doctest::Contains("-1 tokens"), Error);
  CHECK_THROWS_WITH_AS(cuda::gemm_w4(w.dev, x.data() + 1, nullptr, y.data(), 16), doctest::Contains("16-byte aligned"),
                       Error);
  cuda::gemm_w4(w.dev, x.data(), nullptr, y.data(), 0);  // nothing to do
  sync_launch();
}
