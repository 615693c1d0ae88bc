// Split-K decode attention on the GPU against cpu::attention on the same rounded inputs, for batches
// of sequences of mixed lengths (1 .. 32768), 1 to 8 queries per sequence, GQA 1/3/4/8, head_dim
// 64/128, sliding window, padded cache rows, and a CUDA graph replayed with new lengths. Fresh random
// inputs (seed printed; TURBINE_TEST_SEED repeats one); outputs and the split workspace are poisoned
// with NaN before each launch; relative error < 1e-3 (f16), < 1e-2 (bf16); NaN never passes.
// Every configuration runs twice: split + merge kernels, and the split kernel with the merge folded
// in (DecodeOptions::counters, launched with PDL, with and without prefetch_kv and min_split_tiles),
// whose counters must be back at zero after each launch (graph replays and repeated launches reuse them).
// Paged caches: the same batches scattered over a shared pool of blocks in random order (poisoned
// rows between them), read through block tables.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <turbine/backend/cpu/attention.hpp>
#include <turbine/backend/cuda/attention_decode.cuh>
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

std::mt19937_64& rng() { return turbine::test::seeded_rng64("attention_decode"); }

// A batch of sequences on the device: each cache in its own region of one buffer (with
// `stride` elements per position), the per-sequence pointer arrays, q, out and the lengths. With
// `block` > 0 the caches are paged instead: blocks of `block` positions of all sequences in one
// pool, in a random order with unused (NaN) blocks among them, and a block table per sequence.

template <class T>
struct Batch {
  AttentionShape shape;
  int queries = 1;
  int64_t stride = 0;
  std::vector<int> lengths;
  std::vector<float> q, k, v;        // host, rounded: q [batch, queries, heads, hd]; k/v concatenated
  std::vector<int64_t> offset;       // start of each sequence in k/v (host, in positions)
  DeviceBuffer<T> dq, dk, dv, dout;  // dk/dv: [sum of lengths, stride]
  DeviceBuffer<const T*> kptr, vptr;
  DeviceBuffer<int> dlen, dtable;
  turbine::cuda::PagedKvTable table;

  Batch(const AttentionShape& s, int nq, const std::vector<int>& lens, int pad, int block = 0) : shape(s), queries(nq), lengths(lens) {
    const int64_t hd = s.head_dim, kv_row = s.kv_heads * hd, row = s.heads * hd;
    stride = kv_row + pad;
    int64_t total = 0;
    for (int len : lens) {
      offset.push_back(total);
      total += len;
    }
    std::vector<T> tq, tk, tv;
    q = random_rounded<T>(size_t(lens.size()) * nq * row, 3.f, tq, rng());
    k = random_rounded<T>(size_t(total) * kv_row, 1.f, tk, rng());
    v = random_rounded<T>(size_t(total) * kv_row, 1.f, tv, rng());
    std::vector<T> pk(size_t(total) * stride, to_t<T>(NAN)), pv(size_t(total) * stride, to_t<T>(NAN));
    for (int64_t p = 0; p < total; ++p)
      for (int64_t i = 0; i < kv_row; ++i) {
        pk[p * stride + i] = tk[p * kv_row + i];
        pv[p * stride + i] = tv[p * kv_row + i];
      }
    std::vector<int64_t> base(lens.size());  // where each sequence's rows start in dk/dv
    for (size_t b = 0; b < lens.size(); ++b) base[b] = offset[b];
    std::vector<int> host_table;
    if (block > 0) {  // scatter each sequence's blocks over a pool, in a random order
      int max_blocks = 0, used = 0;
      for (int len : lens) {
        max_blocks = std::max(max_blocks, (len + block - 1) / block);
        used += (len + block - 1) / block;
      }
      const int pool_blocks = used + 3;  // a few never used: poisoned rows a wrong lookup would hit
      std::vector<int> order(static_cast<size_t>(pool_blocks));
      for (int i = 0; i < pool_blocks; ++i) order[static_cast<size_t>(i)] = i;
      std::shuffle(order.begin(), order.end(), rng());
      std::vector<T> qk(size_t(pool_blocks) * block * stride, to_t<T>(NAN)), qv(qk.size(), to_t<T>(NAN));
      host_table.assign(lens.size() * static_cast<size_t>(max_blocks), 0);
      int next = 0;
      for (size_t b = 0; b < lens.size(); ++b)
        for (int i = 0; i * block < lens[b]; ++i) {
          const int phys = order[static_cast<size_t>(next++)];
          host_table[b * max_blocks + i] = phys;
          for (int r = 0; r < block && i * block + r < lens[b]; ++r)
            for (int64_t e = 0; e < stride; ++e) {
              qk[(int64_t(phys) * block + r) * stride + e] = pk[(offset[b] + i * block + r) * stride + e];
              qv[(int64_t(phys) * block + r) * stride + e] = pv[(offset[b] + i * block + r) * stride + e];
            }
        }
      pk.swap(qk);
      pv.swap(qv);
      std::fill(base.begin(), base.end(), 0);  // every sequence reads the one pool
      dtable = DeviceBuffer<int>(host_table.size());
      TURBINE_CUDA_CHECK(cudaMemcpy(dtable.data(), host_table.data(), dtable.bytes(), cudaMemcpyHostToDevice));
      table = {dtable.data(), max_blocks, turbine::cuda::block_shift(block)};
    }
    dq = DeviceBuffer<T>(tq.size());
    dk = DeviceBuffer<T>(pk.size());
    dv = DeviceBuffer<T>(pv.size());
    dout = DeviceBuffer<T>(tq.size());
    TURBINE_CUDA_CHECK(cudaMemcpy(dq.data(), tq.data(), dq.bytes(), cudaMemcpyHostToDevice));
    TURBINE_CUDA_CHECK(cudaMemcpy(dk.data(), pk.data(), dk.bytes(), cudaMemcpyHostToDevice));
    TURBINE_CUDA_CHECK(cudaMemcpy(dv.data(), pv.data(), dv.bytes(), cudaMemcpyHostToDevice));
    std::vector<const T*> hk, hv;
    for (int64_t off : base) {
      hk.push_back(dk.data() + off * stride);
      hv.push_back(dv.data() + off * stride);
    }
    kptr = DeviceBuffer<const T*>(hk.size());
    vptr = DeviceBuffer<const T*>(hv.size());
    TURBINE_CUDA_CHECK(cudaMemcpy(kptr.data(), hk.data(), kptr.bytes(), cudaMemcpyHostToDevice));
    TURBINE_CUDA_CHECK(cudaMemcpy(vptr.data(), hv.data(), vptr.bytes(), cudaMemcpyHostToDevice));
    dlen = DeviceBuffer<int>(lens.size());
    set_lengths(lens);
  }
  int batch() const { return int(lengths.size()); }
  int max_len() const {
    int m = 0;
    for (int l : lengths) m = std::max(m, l);
    return m;
  }
  // Shorter lengths reuse the same caches (a prefix of each sequence).
  void set_lengths(const std::vector<int>& lens) {
    for (size_t b = 0; b < lens.size(); ++b) CHECK(lens[b] <= (b + 1 < offset.size() ? offset[b + 1] - offset[b] : int64_t(k.size() / (shape.kv_heads * shape.head_dim)) - offset[b]));
    lengths = lens;
    TURBINE_CUDA_CHECK(cudaMemcpy(dlen.data(), lens.data(), dlen.bytes(), cudaMemcpyHostToDevice));
  }
  void poison(void* workspace, size_t ws_bytes) {
    TURBINE_CUDA_CHECK(cudaMemset(dout.data(), 0xff, dout.bytes()));
    TURBINE_CUDA_CHECK(cudaMemset(workspace, 0xff, ws_bytes));
  }
  void launch(const turbine::cuda::DecodePlan& plan, void* workspace, cudaStream_t stream = 0,
              unsigned* counters = nullptr, bool prefetch_kv = false, int min_split_tiles = 1, int block_warps = 0) {
    turbine::cuda::DecodeOptions o;
    o.block_warps = block_warps;
    o.counters = counters;
    o.pdl = counters != nullptr;
    o.prefetch_kv = prefetch_kv;
    o.min_split_tiles = min_split_tiles;
    o.table = table;
    turbine::cuda::attention_decode<T>(plan, dq.data(), kptr.data(), vptr.data(), stride == shape.kv_heads * shape.head_dim ? 0 : stride,
                                       dlen.data(), batch(), dout.data(), workspace, stream, o);
  }
  // Relative error of the device output against cpu::attention for the current lengths.
  double error(int64_t* non_finite) {
    const int64_t row = shape.heads * shape.head_dim, kv_row = shape.kv_heads * shape.head_dim;
    std::vector<T> hout(size_t(batch()) * queries * row);
    TURBINE_CUDA_CHECK(cudaMemcpy(hout.data(), dout.data(), hout.size() * sizeof(T), cudaMemcpyDeviceToHost));
    std::vector<float> ref(hout.size());
    for (int b = 0; b < batch(); ++b)
      turbine::cpu::attention(q.data() + int64_t(b) * queries * row, k.data() + offset[b] * kv_row,
                              v.data() + offset[b] * kv_row, queries, lengths[b] - queries, shape,
                              ref.data() + int64_t(b) * queries * row);
    double num = 0, den = 0;
    *non_finite = 0;
    for (size_t i = 0; i < hout.size(); ++i) {
      const double o = to_f(hout[i]), r = ref[i];
      if (!std::isfinite(o)) ++*non_finite;
      num += (o - r) * (o - r);
      den += r * r;
    }
    return std::sqrt(num / den);
  }
};

// Counters for the folded merge, zeroed once; they must stay usable launch after launch.
DeviceBuffer<unsigned> zeroed_counters(const turbine::cuda::DecodePlan& plan) {
  DeviceBuffer<unsigned> c(turbine::cuda::attention_decode_counter_bytes(plan) / sizeof(unsigned));
  TURBINE_CUDA_CHECK(cudaMemset(c.data(), 0, c.bytes()));
  return c;
}

template <class T>
void check_batch(const AttentionShape& s, int nq, const std::vector<int>& lens, int pad = 0, int block = 0) {
  Batch<T> b(s, nq, lens, pad, block);
  const auto plan = turbine::cuda::plan_attention_decode<T>(s, b.batch(), b.max_len(), nq);
  const size_t ws_bytes = turbine::cuda::attention_decode_workspace_bytes(plan);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  auto counters = zeroed_counters(plan);
  std::string ls;
  for (int l : lens) ls += std::to_string(l) + " ";
  // split + merge kernels; then the folded merge twice (the second launch finds the counters reset,
  // reads the cache before the new tokens ahead of the PDL wait, and takes 3 tiles per split at
  // least); with the launcher's warps a block, then 4 and 8 warps forced (these batches are small,
  // so the launcher picks 8 on a large GPU).
  constexpr int kRuns = 9;
  for (int run = 0; run < kRuns; ++run) {
    const int warps = run < 3 ? 0 : run < 6 ? 4 : 8, mode = run % 3;
    const bool folded = mode > 0, prefetch = mode == 2;
    b.poison(ws.data(), ws_bytes);
    b.launch(plan, ws.data(), 0, folded ? counters.data() : nullptr, prefetch, prefetch ? 3 : 1, warps);
    TURBINE_CUDA_CHECK(cudaGetLastError());
    TURBINE_CUDA_CHECK(cudaDeviceSynchronize());
    int64_t bad = 0;
    const double err = b.error(&bad);
    std::printf("decode %-4s hd %3d heads %2d/%d queries %d window %4lld pad %d block %3d splits %3d %s w%d lengths [%s]: rel err %.3e%s\n",
                HalfTraits<T>::name, int(s.head_dim), int(s.heads), int(s.kv_heads), nq, static_cast<long long>(s.sliding_window),
                pad, block, plan.splits, !folded ? "merge " : prefetch ? "prefet" : "folded", warps, ls.c_str(), err,
                bad ? " NON-FINITE" : "");
    INFO(HalfTraits<T>::name, " hd ", s.head_dim, " heads ", s.heads, "/", s.kv_heads, " queries ", nq, " lengths ", ls,
         " run ", run, " warps ", warps);
    CHECK(bad == 0);
    CHECK(err < HalfTraits<T>::tol);
  }
  std::vector<unsigned> left(counters.size());
  TURBINE_CUDA_CHECK(cudaMemcpy(left.data(), counters.data(), counters.bytes(), cudaMemcpyDeviceToHost));
  CHECK(std::all_of(left.begin(), left.end(), [](unsigned c) { return c == 0; }));
}

bool no_gpu() {
  if (turbine::cuda::device_count() > 0) return false;
  turbine::test::skip("no CUDA device on this machine");
  return true;
}

const std::vector<int> kLengths = {1, 17, 63, 64, 65, 127, 1000, 4096};

template <class T>
void grid() {
  for (int hd : {64, 128})
    for (int ratio : {1, 3, 4, 8}) check_batch<T>(AttentionShape{2 * ratio, 2, hd, 0}, 1, kLengths);
}

}  // namespace

TEST_CASE("decode f16: one query, head_dim 64/128, GQA 1/3/4/8, lengths 1 .. 4096 in one batch") {
  if (no_gpu()) return;
  grid<__half>();
}

TEST_CASE("decode bf16: one query, head_dim 64/128, GQA 1/3/4/8, lengths 1 .. 4096 in one batch") {
  if (no_gpu()) return;
  grid<__nv_bfloat16>();
}

TEST_CASE("decode: 32768 positions at the Llama-3-8B shape, alone and next to short sequences") {
  if (no_gpu()) return;
  check_batch<__nv_bfloat16>(AttentionShape{32, 8, 128, 0}, 1, {32768});
  check_batch<__half>(AttentionShape{32, 8, 128, 0}, 1, {5, 32768, 300});
  check_batch<__half>(AttentionShape{9, 3, 64, 0}, 1, {32768});
}

TEST_CASE("decode: several queries per sequence (speculative), causal among themselves") {
  if (no_gpu()) return;
  check_batch<__half>(AttentionShape{8, 2, 128, 0}, 4, {4, 17, 64, 65, 1000});    // 16 rows
  check_batch<__nv_bfloat16>(AttentionShape{16, 2, 64, 0}, 3, {3, 130, 4096});    // 24 rows
  check_batch<__half>(AttentionShape{16, 2, 128, 0}, 8, {8, 9, 129, 2000});       // 64 rows
  check_batch<__nv_bfloat16>(AttentionShape{4, 4, 128, 0}, 8, {8, 63, 64, 4100}); // 8 rows
  check_batch<__half>(AttentionShape{9, 3, 64, 0}, 2, {2, 66, 1000});
}

TEST_CASE("decode: sliding window") {
  if (no_gpu()) return;
  check_batch<__half>(AttentionShape{8, 2, 128, 100}, 1, {50, 101, 1000, 4096});
  check_batch<__nv_bfloat16>(AttentionShape{8, 2, 64, 64}, 2, {2, 64, 65, 3000});
  check_batch<__half>(AttentionShape{8, 2, 64, 1}, 1, {1, 70});
}

TEST_CASE("decode: padded cache rows (kv_stride > kv_heads * head_dim)") {
  if (no_gpu()) return;
  check_batch<__half>(AttentionShape{8, 2, 128, 0}, 1, {1, 300, 2049}, 64);
  check_batch<__nv_bfloat16>(AttentionShape{6, 2, 64, 0}, 2, {7, 500}, 8);
}

TEST_CASE("decode: paged caches read through block tables (blocks of 16, 64, 128 in random order)") {
  if (no_gpu()) return;
  for (int block : {16, 64, 128}) {
    check_batch<__half>(AttentionShape{8, 2, 128, 0}, 1, kLengths, 0, block);
    check_batch<__nv_bfloat16>(AttentionShape{6, 2, 64, 0}, 1, {1, 63, 64, 65, 700}, 0, block);
  }
  check_batch<__half>(AttentionShape{8, 2, 128, 0}, 4, {4, 17, 130, 1000}, 0, 64);   // several queries
  check_batch<__half>(AttentionShape{8, 2, 64, 100}, 1, {50, 101, 1000}, 0, 16);     // sliding window
  check_batch<__half>(AttentionShape{8, 2, 128, 0}, 1, {1, 300, 2049}, 64, 64);       // padded rows
}

TEST_CASE("decode: a CUDA graph replays with lengths changed on the device") {
  if (no_gpu()) return;
  using T = __half;
  const AttentionShape s{8, 2, 128, 0};
  for (int warps : {4, 8})
  for (bool folded : {false, true}) {
    Batch<T> b(s, 1, {8192, 3000, 70}, 0);
    const auto plan = turbine::cuda::plan_attention_decode<T>(s, b.batch(), 8192, 1);
    const size_t ws_bytes = turbine::cuda::attention_decode_workspace_bytes(plan);
    DeviceBuffer<unsigned char> ws(ws_bytes);
    auto counters = zeroed_counters(plan);
    cudaStream_t stream;
    TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    TURBINE_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    b.launch(plan, ws.data(), stream, folded ? counters.data() : nullptr, folded, folded ? 2 : 1, warps);
    TURBINE_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    TURBINE_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (const std::vector<int>& lens : {std::vector<int>{8192, 3000, 70}, std::vector<int>{1, 2999, 64},
                                         std::vector<int>{4097, 1, 65}, std::vector<int>{8000, 64, 1}}) {
      b.set_lengths(lens);
      b.poison(ws.data(), ws_bytes);
      TURBINE_CUDA_CHECK(cudaGraphLaunch(exec, stream));
      TURBINE_CUDA_CHECK(cudaGetLastError());
      TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream));
      int64_t bad = 0;
      const double err = b.error(&bad);
      std::printf("decode graph replay (%s, %d warps) lengths [%d %d %d]: rel err %.3e%s\n", folded ? "folded" : "merge",
                  warps, lens[0], lens[1], lens[2], err, bad ? " NON-FINITE" : "");
      CHECK(bad == 0);
      CHECK(err < HalfTraits<T>::tol);
    }
    TURBINE_CUDA_CHECK(cudaGraphExecDestroy(exec));
    TURBINE_CUDA_CHECK(cudaGraphDestroy(graph));
    TURBINE_CUDA_CHECK(cudaStreamDestroy(stream));
  }
}

TEST_CASE("decode: unsupported sizes name the supported values") {
  if (no_gpu()) return;
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const turbine::Error& e) {
      return e.what();
    }
    return "";
  };
  CHECK(message([] { turbine::cuda::plan_attention_decode<__half>(AttentionShape{2, 1, 96, 0}, 1, 100); })
            .find("supported: 64, 128") != std::string::npos);
  CHECK(message([] { turbine::cuda::plan_attention_decode<__half>(AttentionShape{32, 1, 128, 0}, 1, 100, 4); })
            .find("supported: 1 to 64") != std::string::npos);
  const auto plan = turbine::cuda::plan_attention_decode<__half>(AttentionShape{2, 1, 64, 0}, 1, 100);
  turbine::cuda::DecodeOptions six;
  six.block_warps = 6;
  CHECK(message([&] {
          turbine::cuda::attention_decode<__half>(plan, nullptr, nullptr, nullptr, 0, nullptr, 1, nullptr, nullptr, 0, six);
        }).find("6 warps a block is not supported (supported: 0 for the launcher's choice, 4, 8)") != std::string::npos);
}
