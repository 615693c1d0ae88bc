// Prefill attention on the GPU against cpu::attention on the same rounded inputs: fresh random
// inputs each run (the seed is printed; TURBINE_TEST_SEED repeats one), outputs poisoned with NaN
// before the launch, relative error ||out - ref|| / ||ref|| under 1e-3 (f16) and 1e-2 (bf16).
// For 4096 and 8192 tokens the O(n^2) reference is computed for a sample of query rows only (the
// first and last 32 and 64 random ones); every output row is still checked to be finite. Paged
// caches: the positions scattered over a pool of blocks in random order (with unused NaN blocks),
// read through a block table.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <turbine/backend/cpu/attention.hpp>
#include <turbine/backend/cuda/attention_prefill.cuh>
#include <turbine/backend/cuda/device_buffer.cuh>
#include <turbine/backend/cuda/paged_kv.cuh>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

namespace {

using turbine::cpu::AttentionShape;
using turbine::cuda::DeviceBuffer;
using turbine::test::HalfTraits;
using turbine::test::random_rounded;
using turbine::test::to_f;
using turbine::test::to_t;

std::mt19937_64& rng() { return turbine::test::seeded_rng64("attention_prefill"); }

struct Case {
  int tokens, pos0, heads, kv_heads, head_dim, window = 0;
  int stride_pad = 0;  // extra elements per cache position (kv_stride > kv_heads * head_dim)
  int block = 0;       // > 0: a paged cache of blocks of this many positions
};

struct Result {
  double err = NAN;
  int64_t non_finite = 0;
  int64_t rows_checked = 0;
};

template <class T>
using Launch = void (*)(const turbine::cuda::attn::PrefillArgs<T>&, cudaStream_t);

// `launch` picks one tile configuration; nullptr runs the public attention_prefill.
template <class T>
Result run_case(const Case& c, Launch<T> launch) {
  const int64_t hd = c.head_dim, kv_len = int64_t(c.pos0) + c.tokens;
  const int64_t row = int64_t(c.heads) * hd, kv_row = int64_t(c.kv_heads) * hd, stride = kv_row + c.stride_pad;
  const AttentionShape shape{c.heads, c.kv_heads, hd, c.window};
  std::vector<T> hq, hk, hv;
  const std::vector<float> q = random_rounded<T>(size_t(c.tokens) * row, 3.f, hq, rng());
  const std::vector<float> k = random_rounded<T>(size_t(kv_len) * kv_row, 1.f, hk, rng());
  const std::vector<float> v = random_rounded<T>(size_t(kv_len) * kv_row, 1.f, hv, rng());

  // The device cache has `stride` elements per position; the padding is poisoned too.
  std::vector<T> pk(size_t(kv_len) * stride, to_t<T>(NAN)), pv(size_t(kv_len) * stride, to_t<T>(NAN));
  for (int64_t p = 0; p < kv_len; ++p)
    for (int64_t i = 0; i < kv_row; ++i) {
      pk[p * stride + i] = hk[p * kv_row + i];
      pv[p * stride + i] = hv[p * kv_row + i];
    }
  turbine::cuda::PagedKvTable table;
  DeviceBuffer<int> dtable;
  if (c.block > 0) {  // the same rows, block by block, at random places of a larger pool
    const int blocks = int((kv_len + c.block - 1) / c.block), pool = blocks + 3;
    std::vector<int> order(static_cast<size_t>(pool));
    for (int i = 0; i < pool; ++i) order[static_cast<size_t>(i)] = i;
    std::shuffle(order.begin(), order.end(), rng());
    order.resize(static_cast<size_t>(blocks));
    std::vector<T> qk(size_t(pool) * c.block * stride, to_t<T>(NAN)), qv(qk.size(), to_t<T>(NAN));
    for (int64_t p = 0; p < kv_len; ++p) {
      const int64_t dst = int64_t(order[static_cast<size_t>(p / c.block)]) * c.block + p % c.block;
      std::copy(pk.begin() + p * stride, pk.begin() + (p + 1) * stride, qk.begin() + dst * stride);
      std::copy(pv.begin() + p * stride, pv.begin() + (p + 1) * stride, qv.begin() + dst * stride);
    }
    pk.swap(qk);
    pv.swap(qv);
    dtable = DeviceBuffer<int>(order.size());
    TURBINE_CUDA_CHECK(cudaMemcpy(dtable.data(), order.data(), dtable.bytes(), cudaMemcpyHostToDevice));
    table = {dtable.data(), blocks, turbine::cuda::block_shift(c.block)};
  }
  DeviceBuffer<T> dq(hq.size()), dk(pk.size()), dv(pv.size()), dout(hq.size());
  TURBINE_CUDA_CHECK(cudaMemcpy(dq.data(), hq.data(), dq.bytes(), cudaMemcpyHostToDevice));
  TURBINE_CUDA_CHECK(cudaMemcpy(dk.data(), pk.data(), dk.bytes(), cudaMemcpyHostToDevice));
  TURBINE_CUDA_CHECK(cudaMemcpy(dv.data(), pv.data(), dv.bytes(), cudaMemcpyHostToDevice));
  TURBINE_CUDA_CHECK(cudaMemset(dout.data(), 0xff, dout.bytes()));  // NaN in f16 and bf16
  if (launch)
    launch(turbine::cuda::attn::make_prefill_args<T>(dq.data(), dk.data(), dv.data(), dout.data(), c.tokens, c.pos0,
                                                     shape, c.stride_pad ? stride : 0, table),
           0);
  else
    turbine::cuda::attention_prefill<T>(dq.data(), dk.data(), dv.data(), dout.data(), c.tokens, c.pos0, shape, 0,
                                        c.stride_pad ? stride : 0, table);
  TURBINE_CUDA_CHECK(cudaGetLastError());
  TURBINE_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<T> hout(hq.size());
  TURBINE_CUDA_CHECK(cudaMemcpy(hout.data(), dout.data(), dout.bytes(), cudaMemcpyDeviceToHost));

  Result r;
  for (const T& x : hout)
    if (!std::isfinite(to_f(x))) ++r.non_finite;

  // Rows to compare: all of them, or a sample for the long cases.
  std::vector<int> rows;
  if (int64_t(c.tokens) * kv_len <= int64_t(2100) * 2100) {
    for (int t = 0; t < c.tokens; ++t) rows.push_back(t);
  } else {
    for (int t = 0; t < 32; ++t) rows.push_back(t);
    for (int t = c.tokens - 32; t < c.tokens; ++t) rows.push_back(t);
    std::uniform_int_distribution<int> pick(32, c.tokens - 33);
    for (int i = 0; i < 64; ++i) rows.push_back(pick(rng()));
  }
  std::vector<float> ref(rows.size() * row);
  turbine::default_pool().parallel_for(int64_t(rows.size()), [&](int64_t b, int64_t e) {
    thread_local turbine::ThreadPool serial(1);
    for (int64_t i = b; i < e; ++i) {
      const int t = rows[i];
      turbine::cpu::attention(q.data() + t * row, k.data(), v.data(), 1, c.pos0 + t, shape, ref.data() + i * row,
                              serial);
    }
  });
  double num = 0, den = 0;
  for (size_t i = 0; i < rows.size(); ++i)
    for (int64_t j = 0; j < row; ++j) {
      const double o = to_f(hout[rows[i] * row + j]), rf = ref[i * row + j];
      num += (o - rf) * (o - rf);
      den += rf * rf;
    }
  r.err = std::sqrt(num / den);
  r.rows_checked = int64_t(rows.size());
  return r;
}

template <class T>
void check_case(const Case& c, Launch<T> launch = nullptr, const char* config = "") {
  const Result r = run_case<T>(c, launch);
  std::printf("prefill %-4s %s%shd %3d heads %2d/%d tokens %5d pos0 %5d window %4d pad %d block %3d: rel err %.3e (%lld rows)%s\n",
              HalfTraits<T>::name, config, *config ? " " : "", c.head_dim, c.heads, c.kv_heads, c.tokens, c.pos0, c.window, c.stride_pad, c.block, r.err,
              static_cast<long long>(r.rows_checked), r.non_finite ? " NON-FINITE" : "");
  INFO(HalfTraits<T>::name, " ", config, " hd ", c.head_dim, " heads ", c.heads, "/", c.kv_heads, " tokens ", c.tokens, " pos0 ", c.pos0,
       " window ", c.window);
  CHECK(r.non_finite == 0);
  CHECK(r.err < HalfTraits<T>::tol);  // false for NaN
}

bool no_gpu() {
  if (turbine::cuda::device_count() > 0) return false;
  turbine::test::skip("no CUDA device on this machine");
  return true;
}

template <class T>
void small_grid() {
  for (int hd : {64, 128})
    for (int ratio : {1, 3, 4, 8})
      for (int tokens : {1, 17, 63, 64, 65, 127}) check_case<T>({tokens, 0, 2 * ratio, 2, hd});
}

}  // namespace

TEST_CASE("prefill: the comparison rejects NaN") {
  const double nan = NAN;
  CHECK_FALSE(nan < 1e-2);
}

TEST_CASE("prefill f16: head_dim 64/128, GQA 1/3/4/8, short sequences") {
  if (no_gpu()) return;
  small_grid<__half>();
}

TEST_CASE("prefill bf16: head_dim 64/128, GQA 1/3/4/8, short sequences") {
  if (no_gpu()) return;
  small_grid<__nv_bfloat16>();
}

TEST_CASE("prefill: 1000 tokens (full reference) and 4096 tokens (sampled rows)") {
  if (no_gpu()) return;
  for (int hd : {64, 128})
    for (int ratio : {1, 3, 4, 8}) {
      check_case<__half>({1000, 0, 2 * ratio, 2, hd});
      check_case<__nv_bfloat16>({1000, 0, 2 * ratio, 2, hd});
    }
  check_case<__half>({4096, 0, 8, 2, 128});
  check_case<__nv_bfloat16>({4096, 0, 8, 2, 64});
  check_case<__nv_bfloat16>({4096, 0, 9, 3, 64});
}

TEST_CASE("prefill: 8192 tokens at the Llama-3-8B shape (sampled rows)") {
  if (no_gpu()) return;
  check_case<__nv_bfloat16>({8192, 0, 32, 8, 128});
}

TEST_CASE("prefill: chunked (pos0 > 0, earlier positions already in the cache)") {
  if (no_gpu()) return;
  check_case<__half>({65, 100, 8, 2, 128});
  check_case<__nv_bfloat16>({65, 100, 8, 2, 128});
  check_case<__half>({1, 1000, 8, 2, 64});
  check_case<__half>({64, 64, 6, 2, 64});
  check_case<__nv_bfloat16>({300, 3000, 8, 2, 128});
  check_case<__half>({127, 1, 24, 3, 128});
  check_case<__nv_bfloat16>({1000, 3096, 8, 1, 64});
}

TEST_CASE("prefill: sliding window") {
  if (no_gpu()) return;
  check_case<__half>({300, 0, 8, 2, 128, 50});
  check_case<__nv_bfloat16>({300, 0, 8, 2, 64, 64});
  check_case<__half>({1000, 500, 8, 2, 64, 129});
  check_case<__half>({65, 0, 4, 4, 128, 1});
  check_case<__nv_bfloat16>({200, 100, 8, 2, 128, 4096});  // window longer than the sequence
  check_case<__half>({4096, 0, 8, 2, 128, 1000});
}

TEST_CASE("prefill: padded cache rows (kv_stride > kv_heads * head_dim)") {
  if (no_gpu()) return;
  check_case<__half>({100, 37, 8, 2, 128, 0, 64});
  check_case<__nv_bfloat16>({70, 0, 6, 2, 64, 0, 8});
}

TEST_CASE("prefill: paged caches read through a block table (blocks of 16, 64, 128 in random order)") {
  if (no_gpu()) return;
  for (int block : {16, 64, 128}) {
    check_case<__half>({65, 100, 8, 2, 128, 0, 0, block});
    check_case<__nv_bfloat16>({300, 3000, 8, 2, 128, 0, 0, block});
    check_case<__half>({127, 1, 6, 2, 64, 0, 0, block});
  }
  check_case<__half>({1000, 500, 8, 2, 64, 129, 0, 64});  // sliding window
  check_case<__half>({100, 37, 8, 2, 128, 0, 64, 16});    // padded rows
  check_case<__half>({2048, 0, 32, 8, 128, 0, 0, 64});    // the large tile configuration
}

TEST_CASE("prefill: every tile configuration the launcher or the benchmark may pick") {
  if (no_gpu()) return;
  using namespace turbine::cuda::attn;
  using B = __nv_bfloat16;
  using H = __half;
  const std::pair<const char*, Launch<B>> bf[] = {
      {"128/mt1_nw8_ns2", launch_prefill<B, 128, 1, 8, 2>}, {"128/mt1_nw8_ns3", launch_prefill<B, 128, 1, 8, 3>},
      {"128/mt2_nw4_ns2", launch_prefill<B, 128, 2, 4, 2>}, {"128/mt1_nw4_ns2", launch_prefill<B, 128, 1, 4, 2>},
      {"128/mt1_nw4_ns3", launch_prefill<B, 128, 1, 4, 3>}, {"64/mt2_nw4_ns2", launch_prefill<B, 64, 2, 4, 2>},
      {"64/mt2_nw4_ns3", launch_prefill<B, 64, 2, 4, 3>},   {"64/mt1_nw8_ns2", launch_prefill<B, 64, 1, 8, 2>},
      {"64/mt1_nw4_ns2", launch_prefill<B, 64, 1, 4, 2>},   {"64/mt1_nw4_ns3", launch_prefill<B, 64, 1, 4, 3>},
  };
  for (const auto& [name, fn] : bf) {
    const int hd = name[0] == '1' ? 128 : 64;
    check_case<B>({65, 0, 8, 2, hd}, fn, name);
    check_case<B>({300, 700, 6, 2, hd}, fn, name);
    check_case<B>({1000, 0, 4, 1, hd, 200}, fn, name);
  }
  const std::pair<const char*, Launch<H>> f16[] = {
      {"128/mt2_nw4_ns2", launch_prefill<H, 128, 2, 4, 2>}, {"128/mt1_nw4_ns2", launch_prefill<H, 128, 1, 4, 2>},
      {"64/mt1_nw4_ns2", launch_prefill<H, 64, 1, 4, 2>},
  };
  for (const auto& [name, fn] : f16) {
    const int hd = name[0] == '1' ? 128 : 64;
    check_case<H>({130, 1000, 8, 2, hd}, fn, name);
  }
}

TEST_CASE("prefill: unsupported head_dim names the supported values") {
  if (no_gpu()) return;
  DeviceBuffer<__half> buf(96 * 8);
  try {
    turbine::cuda::attention_prefill<__half>(buf.data(), buf.data(), buf.data(), buf.data(), 1, 0,
                                             AttentionShape{2, 1, 96, 0});
    FAIL("no error for head_dim 96");
  } catch (const turbine::Error& e) {
    CHECK(std::string(e.what()).find("supported: 64, 128") != std::string::npos);
  }
}
