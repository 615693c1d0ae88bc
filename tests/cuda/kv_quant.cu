// The quantized KV cache (kv::Int8, kv::Int4; backend/cuda/kv_quant.cuh) on the GPU:
//  - write: rope_qkv quantizes the rotated k and v rows into a paged pool; the codes, dequantized
//    on the host, are compared with quant::kv_round_trip of the fp32 reference rows (each element
//    within half a step of the input, plus fp16 rounding of the stored scale and minimum);
//  - read: decode (split-KV, folded merge or not) and prefill attention over a host-quantized paged
//    pool (poisoned rows between the blocks) against cpu::attention on the dequantized cache.
// Fresh random inputs (seed printed), poisoned outputs, odd lengths, GQA, head_dim 64 and 128.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <turbine/backend/cpu/attention.hpp>
#include <turbine/backend/cpu/rope.hpp>
#include <turbine/backend/cuda/attention_decode.cuh>
#include <turbine/backend/cuda/attention_prefill.cuh>
#include <turbine/backend/cuda/kv_quant.cuh>
#include <turbine/backend/cuda/rope.cuh>
#include <turbine/layers/rotary.hpp>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

namespace {

// The host mirror of a quantized pool row layout (kv_quant.cuh), per scheme K and head_dim.
template <class K>
struct HostLayout {
  int64_t kv_heads, hd, group, groups, code_bytes, row_bytes;
  HostLayout(int64_t kvh, int64_t head_dim)
      : kv_heads(kvh), hd(head_dim), group(quant::kv_group_size<K>(head_dim)), groups(head_dim / group),
        code_bytes(head_dim * K::bits / 8), row_bytes(cuda::kv_row_bytes<__half, K>(kvh, head_dim)) {}
  // int4: channel 8w + c at nibble (c / 2) + 4 (c % 2) of little-endian 32-bit word w.
  static int64_t nibble(int64_t i) { return (i / 8) * 8 + ((i % 8) >> 1) + 4 * (i % 2); }
  int code(const uint8_t* row, int64_t h, int64_t i) const {
    const uint8_t* c = row + h * code_bytes;
    if constexpr (K::bits == 8) return c[i];
    else return (c[nibble(i) / 2] >> (4 * (nibble(i) % 2))) & 0xf;
  }
  void set_code(uint8_t* row, int64_t h, int64_t i, int q) const {
    uint8_t* c = row + h * code_bytes;
    if constexpr (K::bits == 8) {
      c[i] = uint8_t(q);
    } else {
      const int64_t n = nibble(i);
      c[n / 2] = uint8_t((c[n / 2] & (0xf0 >> (4 * (n % 2)))) | (q << (4 * (n % 2))));
    }
  }
  uint16_t* params(uint8_t* row, int64_t h) const { return reinterpret_cast<uint16_t*>(row + kv_heads * code_bytes + h * groups * 4); }
  // Dequantized head vectors of one row: [kv_heads * hd].
  void dequant(const uint8_t* row, float* out) const {
    for (int64_t h = 0; h < kv_heads; ++h) {
      const uint16_t* p = params(const_cast<uint8_t*>(row), h);
      for (int64_t i = 0; i < hd; ++i) {
        const float scale = fp16_to_f32(p[2 * (i / group)]), lo = fp16_to_f32(p[2 * (i / group) + 1]);
        out[h * hd + i] = std::fma(float(code(row, h, i)), scale, lo);
      }
    }
  }
  // Quantizes one row's head vectors x [kv_heads * hd] as the device does (see kv_quant.cuh).
  void quantize(const float* x, uint8_t* row) const {
    const int levels = (1 << K::bits) - 1;
    for (int64_t h = 0; h < kv_heads; ++h)
      for (int64_t g = 0; g < groups; ++g) {
        const float* v = x + h * hd + g * group;
        float lo = v[0], hi = v[0];
        for (int64_t i = 1; i < group; ++i) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
        const float scale = (hi - lo) / float(levels);
        uint16_t sh = f32_to_fp16(scale);
        const uint16_t mh = f32_to_fp16(lo);
        const float sf = fp16_to_f32(sh), mf = fp16_to_f32(mh);
        const bool ok = scale > 0.f && std::isfinite(scale) && sf > 0.f && std::isfinite(sf);
        if (!ok) sh = f32_to_fp16(0.f);
        for (int64_t i = 0; i < group; ++i) {
          const int q = ok ? int(std::clamp(std::nearbyint((v[i] - mf) * (1.f / sf)), 0.f, float(levels))) : 0;
          set_code(row, h, g * group + i, q);
        }
        params(row, h)[2 * g] = sh;
        params(row, h)[2 * g + 1] = mh;
      }
  }
};

template <class T>
float round_t(float x) {
  return HalfTraits<T>::widen(HalfTraits<T>::round(x));
}

// A paged pool of `rows_used` positions of one sequence scattered over blocks of `block` rows in a
// random order, with unused blocks (0xFF: NaN params) between them.
struct Paging {
  std::vector<int> table;
  int blocks = 0;
  Paging(int positions, int block, std::mt19937& rng) {
    const int used = (positions + block - 1) / block;
    blocks = used + 3;
    std::vector<int> order(static_cast<size_t>(blocks));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    table.assign(order.begin(), order.begin() + used);
  }
  int64_t row(int p, int block) const { return int64_t(table[static_cast<size_t>(p / block)]) * block + p % block; }
};

template <class T, class K>
void check_rope_write(int heads, int kv_heads, int hd, int tokens, std::mt19937& rng) {
  CAPTURE(heads);
  CAPTURE(kv_heads);
  CAPTURE(hd);
  CAPTURE(tokens);
  ModelConfig cfg;
  cfg.head_dim = hd;
  cfg.rope_theta = 10000.f;
  const std::vector<float> inv_freq = rope_inv_freq(cfg, 8192);
  auto d_inv = upload(inv_freq);
  const int qd = heads * hd, kvd = kv_heads * hd, row = qd + 2 * kvd, block = 16;
  const int pos0 = std::uniform_int_distribution<int>(0, 300)(rng);
  const auto qkv = random_half<T>(size_t(tokens) * row, rng, -2.f, 2.f);
  auto d_qkv = upload_half<T>(qkv);
  const HostLayout<K> L(kv_heads, hd);
  Paging pg(pos0 + tokens, block, rng);
  auto d_table = upload(pg.table);
  cuda::DeviceBuffer<uint8_t> kc(size_t(pg.blocks) * block * L.row_bytes), vc(kc.size());
  poison(kc);
  poison(vc);
  cuda::RopeQkv<T> p;
  p.q = d_qkv.data();
  p.k = d_qkv.data() + qd;
  p.v = d_qkv.data() + qd + kvd;
  p.q_stride = p.k_stride = p.v_stride = row;
  p.k_cache = reinterpret_cast<T*>(kc.data());
  p.v_cache = reinterpret_cast<T*>(vc.data());
  p.inv_freq = d_inv.data();
  p.tokens = tokens;
  p.heads = heads;
  p.kv_heads = kv_heads;
  p.head_dim = hd;
  p.pos0 = pos0;
  p.cache_positions = int(pg.table.size()) * block;
  p.table = {d_table.data(), int(pg.table.size()), cuda::block_shift(block)};
  cuda::rope_qkv<T, K>(p);
  sync_launch();

  std::vector<float> kr(size_t(tokens) * kvd), vr(kr.size());
  for (int t = 0; t < tokens; ++t)
    for (int i = 0; i < kvd; ++i) {
      kr[size_t(t) * kvd + i] = qkv.values[size_t(t) * row + qd + i];
      vr[size_t(t) * kvd + i] = qkv.values[size_t(t) * row + qd + kvd + i];
    }
  cpu::apply_rope(kr.data(), tokens, kv_heads, hd, pos0, inv_freq);
  std::vector<uint8_t> hk(kc.size()), hv(vc.size());
  TURBINE_CUDA_CHECK(cudaMemcpy(hk.data(), kc.data(), kc.bytes(), cudaMemcpyDeviceToHost));
  TURBINE_CUDA_CHECK(cudaMemcpy(hv.data(), vc.data(), vc.bytes(), cudaMemcpyDeviceToHost));
  for (int which = 0; which < 2; ++which) {
    const std::vector<float>& x = which ? vr : kr;
    const std::vector<uint8_t>& pool = which ? hv : hk;
    std::vector<float> ref = x, got(x.size());
    quant::kv_round_trip<K>(ref.data(), tokens, kv_heads, hd);
    for (int t = 0; t < tokens; ++t) L.dequant(pool.data() + pg.row(pos0 + t, block) * L.row_bytes, got.data() + size_t(t) * kvd);
    // Each element within half a step of its input (the step of its group, plus fp16 slack on the
    // stored scale and minimum).
    int64_t bad = 0;
    for (int64_t gi = 0; gi < int64_t(x.size()); gi += L.group) {
      float lo = x[gi], hi = x[gi];
      for (int64_t i = 1; i < L.group; ++i) lo = std::min(lo, x[gi + i]), hi = std::max(hi, x[gi + i]);
      const float step = (hi - lo) / float((1 << K::bits) - 1);
      const float slack = 0.5f * step * 1.01f + 2e-3f * std::max(std::abs(lo), std::abs(hi));
      for (int64_t i = 0; i < L.group; ++i) bad += !(std::abs(got[gi + i] - x[gi + i]) <= slack);
    }
    const double err = rel_error(got, ref);
    MESSAGE(K::name, " ", HalfTraits<T>::name, which ? " v" : " k", " hd ", hd, ": vs kv_round_trip ", err);
    CHECK(bad == 0);
    CHECK(err < (K::bits == 8 ? 5e-3 : 5e-2));  // codes may differ by one where fp16 params move a boundary
  }
}

// A quantized paged pool of `positions` random rows, and its dequantized values rounded to T.
template <class T, class K>
struct QuantPool {
  HostLayout<K> L;
  Paging pg;
  std::vector<float> k, v;  // [positions, kv_heads * hd] dequantized, rounded to T (what the kernel multiplies)
  cuda::DeviceBuffer<uint8_t> dk, dv;
  cuda::DeviceBuffer<int> dtable;
  cuda::PagedKvTable table;
  QuantPool(int kv_heads, int hd, int positions, int block, std::mt19937& rng)
      : L(kv_heads, hd), pg(positions, block, rng) {
    const int64_t kvd = int64_t(kv_heads) * hd;
    std::vector<uint8_t> hk(size_t(pg.blocks) * block * L.row_bytes, 0xff), hv(hk.size(), 0xff);
    k.resize(size_t(positions) * kvd);
    v.resize(k.size());
    for (int which = 0; which < 2; ++which) {
      std::vector<uint8_t>& pool = which ? hv : hk;
      std::vector<float>& out = which ? v : k;
      const auto x = random_floats(size_t(positions) * kvd, rng, -1.f, 1.f);
      for (int p = 0; p < positions; ++p) {
        uint8_t* r = pool.data() + pg.row(p, block) * L.row_bytes;
        std::fill(r, r + L.row_bytes, 0);
        L.quantize(x.data() + p * kvd, r);
        L.dequant(r, out.data() + p * kvd);
      }
      for (auto& e : out) e = round_t<T>(e);
    }
    dk = upload(hk);
    dv = upload(hv);
    dtable = upload(pg.table);
    table = {dtable.data(), int(pg.table.size()), cuda::block_shift(block)};
  }
};

template <class T, class K>
void check_decode(const cpu::AttentionShape& s, const std::vector<int>& lens, int queries, std::mt19937& rng) {
  CAPTURE(s.heads);
  CAPTURE(s.kv_heads);
  CAPTURE(s.head_dim);
  CAPTURE(queries);
  const int batch = int(lens.size()), hd = int(s.head_dim), block = 16;
  const int64_t qrow = s.heads * hd, kvd = s.kv_heads * hd;
  int max_len = 0;
  for (int l : lens) max_len = std::max(max_len, l);
  // One pool for the batch: sequence b's positions are pool positions [starts[b], ...) (block
  // aligned), read through its own block table.
  std::vector<int> starts(lens.size());
  int stride = 0;
  {
    int pos = 0;
    for (size_t b = 0; b < lens.size(); ++b) {
      starts[b] = pos;
      pos += (lens[b] + block - 1) / block * block;
      stride = std::max(stride, (lens[b] + block - 1) / block);
    }
  }
  int aligned = 0;
  for (int l : lens) aligned += (l + block - 1) / block * block;
  QuantPool<T, K> ap(int(s.kv_heads), hd, aligned, block, rng);
  std::vector<int> tables(size_t(batch) * stride, 0);
  for (int b = 0; b < batch; ++b)
    for (int i = 0; i * block < lens[b]; ++i) tables[size_t(b) * stride + i] = ap.pg.table[size_t(starts[b] / block + i)];
  auto d_tables = upload(tables);
  const cuda::PagedKvTable table{d_tables.data(), stride, cuda::block_shift(block)};
  const auto q = random_half<T>(size_t(batch) * queries * qrow, rng, -3.f, 3.f);
  auto dq = upload_half<T>(q);
  std::vector<const T*> kp(batch, reinterpret_cast<const T*>(ap.dk.data())), vp(batch, reinterpret_cast<const T*>(ap.dv.data()));
  auto dkp = upload(kp), dvp = upload(vp);
  auto dlen = upload(lens);
  cuda::DeviceBuffer<T> out(q.bits.size());
  std::vector<float> ref(q.bits.size());
  for (int b = 0; b < batch; ++b)
    cpu::attention(q.values.data() + size_t(b) * queries * qrow, ap.k.data() + size_t(starts[b]) * kvd,
                   ap.v.data() + size_t(starts[b]) * kvd, queries, lens[b] - queries, s, ref.data() + size_t(b) * queries * qrow);
  for (int warps : {0, 8})  // the launcher's choice (4 warps with a quantized cache) and 8 forced
  for (bool fused : {false, true}) {
    cuda::DecodeAttention<T, K> attn(s, batch, max_len, queries);
    attn.block_warps = warps;
    poison(out);
    attn(dq.data(), dkp.data(), dvp.data(), 0, dlen.data(), batch, out.data(), nullptr, fused, fused ? 2 : 1, fused, table);
    sync_launch();
    const double err = rel_error(download_half(out), ref);
    MESSAGE(K::name, " ", HalfTraits<T>::name, " decode hd ", hd, " group ", s.heads / s.kv_heads, " fused ", fused,
            " warps ", warps, ": ", err);
    CHECK(err < 2 * HalfTraits<T>::tol);
  }
}

template <class T, class K>
void check_prefill(const cpu::AttentionShape& s, int tokens, int pos0, std::mt19937& rng) {
  CAPTURE(s.heads);
  CAPTURE(s.kv_heads);
  CAPTURE(s.head_dim);
  CAPTURE(tokens);
  CAPTURE(pos0);
  const int hd = int(s.head_dim), block = 32;
  const int64_t qrow = s.heads * hd;
  QuantPool<T, K> pool(int(s.kv_heads), hd, pos0 + tokens, block, rng);
  const auto q = random_half<T>(size_t(tokens) * qrow, rng, -3.f, 3.f);
  auto dq = upload_half<T>(q);
  cuda::DeviceBuffer<T> out(q.bits.size());
  poison(out);
  cuda::attention_prefill<T, K>(dq.data(), reinterpret_cast<const T*>(pool.dk.data()), reinterpret_cast<const T*>(pool.dv.data()),
                                out.data(), tokens, pos0, s, nullptr, 0, pool.table);
  sync_launch();
  std::vector<float> ref(q.bits.size());
  cpu::attention(q.values.data(), pool.k.data(), pool.v.data(), tokens, pos0, s, ref.data());
  const double err = rel_error(download_half(out), ref);
  MESSAGE(K::name, " ", HalfTraits<T>::name, " prefill hd ", hd, " tokens ", tokens, " pos0 ", pos0, ": ", err);
  CHECK(err < 2 * HalfTraits<T>::tol);
}

}  // namespace

TEST_CASE_TEMPLATE("rope_qkv quantizes k and v into an int8/int4 cache as kv_round_trip does", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("kv_quant rope"));
  for (int tokens : {1, 7, 33}) {
    check_rope_write<T, kv::Int8>(9, 3, 64, tokens, rng);
    check_rope_write<T, kv::Int4>(9, 3, 64, tokens, rng);
    check_rope_write<T, kv::Int8>(32, 8, 128, tokens, rng);
    check_rope_write<T, kv::Int4>(32, 8, 128, tokens, rng);
  }
}

TEST_CASE_TEMPLATE("decode attention over an int8/int4 paged cache matches the CPU on the dequantized cache", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("kv_quant decode"));
  for (const cpu::AttentionShape s : {cpu::AttentionShape{9, 3, 64, 0}, cpu::AttentionShape{32, 8, 128, 0},
                                      cpu::AttentionShape{8, 8, 128, 0}}) {
    check_decode<T, kv::Int8>(s, {1, 77, 1000, 333}, 1, rng);
    check_decode<T, kv::Int4>(s, {1, 77, 1000, 333}, 1, rng);
    check_decode<T, kv::Int8>(s, {5, 130}, 2, rng);
    check_decode<T, kv::Int4>(s, {3000}, 1, rng);
  }
}

// The register-dequantizing decode kernel's other tilings and masks: GQA 8 (16, 32 and 64 query
// rows per KV head: one, two and four m16 tiles), head_dim 64 and 128, several queries per sequence,
// a sliding window, lengths around the 64-position tile and the 16-position page.
TEST_CASE_TEMPLATE("decode attention over an int8/int4 cache: GQA 8, several queries, sliding window", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("kv_quant decode tiles"));
  for (const cpu::AttentionShape s : {cpu::AttentionShape{64, 8, 128, 0}, cpu::AttentionShape{16, 2, 64, 0}}) {
    for (int queries : {1, 2, 4, 8}) {
      check_decode<T, kv::Int8>(s, {queries, 63, 64, 65, 129, 1500}, queries, rng);
      check_decode<T, kv::Int4>(s, {queries, 63, 64, 65, 129, 1500}, queries, rng);
    }
  }
  for (const cpu::AttentionShape s : {cpu::AttentionShape{32, 8, 128, 100}, cpu::AttentionShape{9, 3, 64, 70}}) {
    check_decode<T, kv::Int8>(s, {1, 99, 100, 101, 777}, 1, rng);
    check_decode<T, kv::Int4>(s, {1, 99, 100, 101, 777}, 1, rng);
    check_decode<T, kv::Int4>(s, {3, 250}, 3, rng);
  }
}

TEST_CASE_TEMPLATE("prefill attention over an int8/int4 paged cache matches the CPU on the dequantized cache", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("kv_quant prefill"));
  for (const cpu::AttentionShape s : {cpu::AttentionShape{9, 3, 64, 0}, cpu::AttentionShape{32, 8, 128, 0}}) {
    for (auto [tokens, pos0] : {std::pair{1, 0}, std::pair{77, 0}, std::pair{45, 100}, std::pair{300, 29}}) {
      check_prefill<T, kv::Int8>(s, tokens, pos0, rng);
      check_prefill<T, kv::Int4>(s, tokens, pos0, rng);
    }
  }
}
