#pragma once
// CudaTransformer<Spec>: the decoder on the GPU. Weights are uploaded once in the Spec's precision
// (GGUF blocks dequantized, safetensors converted), with q/k/v and gate/up fused into one matrix
// each so that a layer is five GEMV/GEMMs. KV cache and scratch are preallocated: nothing is
// allocated while decoding. The single-token decode step is captured in a CUDA graph and replayed.
//
// Decode steps of up to 8 sequences can run a fused chain (DecodeFusion): batch-1 decode of a small
// model is bound by its chain of dependent kernels, not by bytes. With every fold a layer is five
// kernels: QKV GEMV (RMSNorm of residual + delta in its prologue, rotary + KV-cache store in its
// epilogue), attention (split kernel with the merge folded in), O GEMV, gate/up GEMV (RMSNorm
// prologue, silu(gate) * up epilogue), down GEMV; the embedding gather and the final norm fold into
// the first and last GEMVs, and the LM head writes fp32 logits into pinned memory. The residual
// stream then alternates between two fp32 buffers: a GEMV's block 0 writes residual + delta to the
// other one while the remaining blocks still read the first. The fused kernels use programmatic
// dependent launch. DecodeFusion::for_model picks the folds that measured faster for the model's
// size. Prefill and larger batches run the unfused kernels. 4-bit weights (quant::Awq / Rtn) run
// the same chain through the W4A16 GEMV (gemv_w4.cuh) with the same folds.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../backend/cuda/activation.cuh"
#include "../backend/cuda/attention_decode.cuh"
#include "../backend/cuda/attention_prefill.cuh"
#include "../backend/cuda/decode_persistent.cuh"
#include "../backend/cuda/cuda.cuh"
#include "../backend/cuda/embedding.cuh"
#include "../backend/cuda/gemm.cuh"
#include "../backend/cuda/gemv_fused.cuh"
#include "../backend/cuda/gemm_w4.cuh"
#include "../backend/cuda/gemv_w4.cuh"
#include "../backend/cuda/norm.cuh"
#include "../backend/cuda/paged_kv.cuh"
#include "../backend/cuda/rope.cuh"
#include "../core/half.hpp"
#include "../io/ggml_quants.hpp"
#include "../layers/rotary.hpp"
#include "spec.hpp"
#include "transformer.hpp"
#include "weight_scheme.hpp"
#include "weights.hpp"

namespace turbine {

/// The block arena of GPU KV caches in element type T (backend/cuda/paged_kv.cuh), or quantized
/// with scheme K (backend/cuda/kv_quant.cuh).
template <class T, KvScheme K = kv::Same>
using DeviceKvArena = BasicKvBlockArena<cuda::KvStorageOf<T, K>>;
/// KV cache of one sequence on the GPU: a block table over a DeviceKvArena (its own, or the
/// serving engine's shared one).
template <class T, KvScheme K = kv::Same>
using DeviceKvCache = PagedKvCache<DeviceKvArena<T, K>>;

/// The decoder of Spec S on the GPU (`ModelTypeOf<S>` for the Cuda backend): weights in device
/// memory, paged KV caches, preallocated scratch, graph-captured decode steps.
template <class S>
class CudaTransformer {
 public:
  using spec = S;                                      ///< the Spec this model was built from
  using T = cuda::element_t<typename S::precision>;    ///< device element type (__half or __nv_bfloat16)
  using KV = typename S::kv_scheme;                    ///< the KV cache's scheme (kv::Same: T)
  using Cache = DeviceKvCache<T, KV>;                  ///< the KV cache type of one sequence
  using SamplingParams = cuda::SamplingParams;  ///< per-row settings: decode_batch_sample picks tokens on the device
  /// Prompt tokens per forward step: bounds the scratch memory of long prompts.
  static constexpr int64_t kPrefillChunk = 1024;
  /// Sequences the serving engine decodes in one step at most (their logits match a run alone
  /// within the kernels' tolerance, not bit for bit: the GEMMs' shapes differ).
  static constexpr int64_t kMaxDecodeBatch = 512;

  /// Which folds the decode step of up to 8 sequences uses. A default-constructed value turns every
  /// fold on (the benchmark's switchboard); the engine starts from for_model(), the folds that paid on
  /// an H100 (bench/cuda_decode_step.cu), and TURBINE_UNFUSED_DECODE=1 turns them all off.
  struct DecodeFusion {
    bool host_io = true;    ///< fp32 logits from the LM head, pinned staging of the step's inputs and logits
    bool silu = true;       ///< silu(gate) * up in the gate/up GEMV's epilogue
    bool attention = true;  ///< split merge folded into the attention split kernel, launched with PDL
    bool norm = true;       ///< embedding, add + RMSNorm and the final norm in the next GEMV's prologue
    bool rope = true;       ///< rotary + KV-cache store in the QKV GEMV's epilogue (its x normalized or not)
    int attention_min_tiles = 8;  ///< with attention: splits of 8 x 64 positions at least (no merge up to 512)
    /// Warps a decode-attention block (cuda::DecodeOptions::block_warps): 0 the launcher's choice
    /// (8, two tiles at once, where the sequences' KV heads are few), 4 or 8.
    int attention_warps = 0;
    /// With norm: the O and down GEMVs add their output into the fp32 residual in their epilogue and
    /// leave the sum of squares of each 16-row tile, so the next GEMV's norm prologue is one pass
    /// with no reduction over the hidden size (gemv_residual, NormInput::stats); the final norm is
    /// its own kernel. Built for large hidden sizes, where every block of gate/up redoing the norm cost
    /// more than the norm kernels it saved.
    bool norm_stats = false;
    /// The W4 GEMV's kernel and launch for every projection of 1-8 tokens of a 4-bit model (fused
    /// chain or not): default-constructed, gemv_w4's own choice (bench_cuda_decode_step times others).
    cuda::W4Launch w4 = {};
    /// 4-bit models, one sequence: the whole layer stack as one persistent kernel
    /// (backend/cuda/decode_persistent.cuh) instead of the chain of kernels above, where the model's
    /// sizes allow it (cuda::persistent_decode_unsupported); the final norm and LM head as with norm_stats.
    bool persistent = true;
    /// With persistent: 128-input chunks each warp asks L2 for when a layer's attention starts
    /// (cuda::PersistentStep::prefetch_chunks), 0 for none (the default: 8 measured 3.79 ms a
    /// Llama-3-8B step against 3.75 without, H100 2026-12-07).
    int persistent_prefetch = 0;
    /// Whether any fold is on.
    bool any() const { return host_io || silu || attention || norm || rope || norm_stats || persistent; }
    /// Every fold off: the unfused kernel chain.
    static DecodeFusion none() {
      DecodeFusion f{false, false, false, false, false, 1};
      f.persistent = false;
      return f;
    }
    /// Measured (H100, batch 1, 336 positions; graph time per token): fp32 logits and pinned io took
    /// 190 us off SmolLM2-135M's end-to-end step (the host no longer widens 49152 fp16 logits), the
    /// folded attention merge 40-50 us (126 us on Llama-3-8B), >= 8 tiles per split another 25-35.
    /// The norm prologue paid at hidden 576 (30-60 us) but cost 750 us at Llama-3-8B's 4096, where
    /// gate/up has 1792 blocks and each one redoes the norm: it is on up to hidden 1024 only (the
    /// threshold is not measured), and the rotary fold with it. The rotary fold without the norm
    /// fold (gemv_rope on x the norm kernels normalized) measured even at Llama-3-8B W4A16 on an
    /// H100 (2026-12-06: 371 tok/s with it and without it), so it stays off there. silu(gate) * up as
    /// the down GEMV's prologue lost at both sizes (+60-100 us, +1.5 ms: every block recomputed it
    /// over all of k, on the 4 lanes of each 32 that hold a token); its replacement, the gate/up
    /// GEMV's epilogue (`silu`), paid on an H200 (2026-12-03): SmolLM2 f16 1385 -> 1511 tok/s
    /// end to end, Llama-3-8B 209 -> 215, so it is on for every model. Not here: asking L2 for the
    /// next projections' weights on a side stream forked after the QKV or gate/up GEMV
    /// (cp.async.bulk.prefetch.L2) measured 389-394 against 392 tok/s for the O and gate/up weights
    /// and 259-382 for the next layer's QKV on an H100 (2026-12-06, night), and was removed.
    /// The persistent kernel is off here until it measures faster than the chain: on an H100
    /// (2026-12-07, PERFORMANCE.md) a Llama-3-8B W4A16 step took 4.14 ms with its first shape (16
    /// warps, spilling), 3.75 ms with its second (12 warps) and 3.17 ms with the flip barrier, the
    /// drained arrival and the two-round-trip attention, against the chain's 2.78; the
    /// default-constructed value (every fold) turns it on.
    static DecodeFusion for_model(const ModelConfig& c) {
      DecodeFusion f;
      f.norm = f.rope = c.hidden_size <= 1024;
      f.persistent = false;
      return f;
    }
    /// Every fold, with the tile sums above hidden 1024 (norm_stats).
    static DecodeFusion all(const ModelConfig& c) {
      DecodeFusion f;
      f.norm_stats = c.hidden_size > 1024;
      return f;
    }
  };

  /// Uploads the weights to the current device (q/k/v and gate/up fused, converted to T), creates
  /// the model's stream and waits for the uploads. Fails if no CUDA device is available.
  explicit CudaTransformer(ModelWeights weights)
      : host_(apply_weight_scheme<typename S::weight_scheme>(std::move(weights))) {
    static_assert(!std::is_same_v<typename S::precision, f32>, "turbine::Cuda runs in f16 or bf16: use turbine::f16 or turbine::bf16");
    const ModelConfig& c = host_.config;
    check(cuda::device_count() > 0, "no CUDA device is available (use --device cpu)");
    TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    embed_ = upload({&host_.embed});
    lm_head_tied_ = host_.lm_head.data == host_.embed.data;
    // A 4-bit LM head (quantize_lm_head_int4) runs on the W4 kernels in a 4-bit model; a model in
    // T dequantizes it at upload, as any stored format.
    if constexpr (kW4) {
      lm_head_w4_ = is_int4_groups(host_.lm_head.type);
      if (lm_head_w4_) lm_head4_ = upload_w4({&host_.lm_head});
    }
    if (!lm_head_tied_ && !lm_head_w4_) lm_head_ = upload({&host_.lm_head});
    final_norm_ = upload_vector(host_.final_norm);
    for (const LayerWeights& l : host_.layers) {
      Layer d;
      d.attn_norm = upload_vector(l.attn_norm);
      d.mlp_norm = upload_vector(l.mlp_norm);
      if constexpr (kW4) {  // 4-bit Linears (the embedding and LM head stay in T)
        d.wqkv4 = upload_w4({&l.wq, &l.wk, &l.wv});
        d.wo4 = upload_w4({&l.wo});
        d.w_gate_up4 = upload_w4({&l.w_gate, &l.w_up});
        d.w_down4 = upload_w4({&l.w_down});
      } else {
        d.wqkv = upload({&l.wq, &l.wk, &l.wv});
        d.wo = upload({&l.wo});
        d.w_gate_up = upload({&l.w_gate, &l.w_up});
        d.w_down = upload({&l.w_down});
      }
      if (!l.bq.empty()) {
        std::vector<float> b(l.bq);
        b.insert(b.end(), l.bk.begin(), l.bk.end());
        b.insert(b.end(), l.bv.begin(), l.bv.end());
        d.bqkv = upload_vector(b);
      }
      layers_.push_back(std::move(d));
    }
    if constexpr (kW4) {
      cuda::gemm_w4_prepare();  // now, not inside a graph capture
      w4_gemm_max_tokens_ = cuda::gemm_w4_max_useful_tokens();
      w4_gemm_workspace_.emplace();  // this model's own: another model may run gemm_w4 at the same time
      make_w4_scratch();             // above w4_gemm_max_tokens_ tokens
    }
    inv_freq_ = cuda::DeviceBuffer<float>(static_cast<size_t>(c.head_dim / 2), "rope frequencies");
    set_inv_freq(rope_inv_freq(c, 1));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  CudaTransformer(const CudaTransformer&) = delete;
  CudaTransformer& operator=(const CudaTransformer&) = delete;
  ~CudaTransformer() {
    drop_graphs();
    if (stream_) cudaStreamDestroy(stream_);
  }

  /// The model's sizes and options.
  const ModelConfig& config() const { return host_.config; }
  /// The host weights this model was built from.
  const ModelWeights& weights() const { return host_; }
  /// Bytes of weights uploaded to the device.
  size_t device_weight_bytes() const { return weight_bytes_; }

  /// The folds the decode step uses.
  const DecodeFusion& decode_fusion() const { return fusion_; }
  /// 4-bit weights, 9 to w4_gemm_max_tokens_ tokens: the W4A16 tensor-core GEMM (true, the default)
  /// or the w4_dequantize + cuBLASLt path that larger counts take (false; also
  /// TURBINE_W4_DEQUANT_GEMM=1), for comparison.
  void set_w4_tensor_core_gemm(bool on) { w4_gemm_ = on; }
  /// Whether 9 to w4_gemm_max_tokens_ tokens go through gemm_w4 (see set_w4_tensor_core_gemm).
  bool w4_tensor_core_gemm() const { return w4_gemm_; }
  /// Switches the decode folds; drops the captured decode graphs, which the next steps re-capture.
  void set_decode_fusion(const DecodeFusion& f) {
    fusion_ = f;
    drop_graphs();
  }

  /// DecodeFusion::persistent: cache positions an attention split takes at least (32 by default;
  /// tests change it to reach one split and the split merge). Drops the captured graphs.
  void set_persistent_split_positions(int n) {
    check(n >= 1, "set_persistent_split_positions: ", n, " positions is not a split");
    persistent_min_split_positions_ = n;
    drop_graphs();
  }

  /// A cache for one sequence of at most `capacity` tokens (the model's context by default, and at
  /// most it), in blocks of its own allocated on the device now.
  Cache new_cache(int64_t capacity = 0) const {
    const int64_t max = host_.config.max_position_embeddings;
    return Cache(host_.config, capacity > 0 ? std::min(capacity, max) : max);
  }
  /// Bytes of KV cache per position (every layer's keys and values), for the serving budget.
  size_t kv_bytes_per_position() const {
    const ModelConfig& c = host_.config;
    return static_cast<size_t>(2 * c.num_layers * cuda::kv_row_bytes<T, KV>(c.num_kv_heads, c.head_dim));
  }
  /// Memory the KV budget is a fraction of: the GPU memory free now.
  size_t kv_memory_available() const { return cuda::device_free_bytes(); }

  /// Sizes the decode step (scratch, attention plan, cache pointer arrays) for batches of up to `n`
  /// sequences now, so that a serving engine's growing batch does not re-plan (and re-capture its
  /// graphs) at every new width.
  void reserve_decode_batch(int64_t n) {
    ensure_scratch(n);
    max_batch_hint_ = std::max<int64_t>(max_batch_hint_, n);
  }

  /// As Transformer::forward: appends `tokens` to the sequence and writes the logits of the last
  /// token (or of every token) to the host.
  void forward(Cache& cache, std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits = false) {
    const ModelConfig& c = host_.config;
    const int64_t n = static_cast<int64_t>(tokens.size());
    check(n > 0, "forward() needs at least one token");
    cuda::check_token_ids(tokens.data(), n, c.vocab_size);
    cache.reserve_more(n);
    logits.resize(static_cast<size_t>((all_logits ? n : 1) * c.vocab_size));
    if (c.rope_scaling.kind == RopeScaling::Kind::Dynamic) set_inv_freq(rope_inv_freq(c, cache.length() + n));
    if (n == 1) {
      Cache* one = &cache;
      decode_batch(std::span<Cache* const>(&one, 1), tokens, logits.data());
      return;
    }
    for (int64_t start = 0; start < n; start += kPrefillChunk) {
      const int64_t t = std::min(kPrefillChunk, n - start);
      const bool want = all_logits || start + t == n;
      const int64_t first = all_logits ? 0 : t - 1;
      float* dst = logits.data() + (all_logits ? start * c.vocab_size : 0);
      prefill(cache, tokens.data() + start, t, want ? first : -1, want ? dst : nullptr);
      cache.advance(t);
    }
  }

  /// One decode step for several sequences at once: tokens[b] is appended to *caches[b], and the
  /// logits [batch, vocab] of the new tokens are written to `logits` (host). The step is captured
  /// as a CUDA graph per batch size and replayed while the same caches are bound.
  void decode_batch(std::span<Cache* const> caches, std::span<const int32_t> tokens, float* logits) {
    const ModelConfig& c = host_.config;
    const int64_t b = static_cast<int64_t>(caches.size());
    if (launch_decode_step(caches, tokens) && fusion_.host_io) {
      const size_t n = static_cast<size_t>(b * c.vocab_size);
      TURBINE_CUDA_CHECK(cudaMemcpyAsync(logits_pinned_.data(), logits_f32_.data(), n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
      TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
      std::memcpy(logits, logits_pinned_.data(), n * sizeof(float));
    } else {
      copy_logits(b, logits);
    }
    for (Cache* cache : caches) cache->advance(1);
  }

  /// decode_batch() whose next tokens are picked on the GPU by the CPU Sampler's rules
  /// (backend/cuda/sampling.cuh): only the ids cross to the host, not [batch, vocab] logits.
  /// params[b] as in GenerationConfig, with step = the index of the token being drawn (the draw is
  /// a function of seed and step); histories[b] = the sequence's tokens so far, read only when
  /// params[b] has a repetition penalty (may be empty otherwise). next[b] receives the ids.
  void decode_batch_sample(std::span<Cache* const> caches, std::span<const int32_t> tokens,
                           std::span<const cuda::SamplingParams> params, std::span<const std::span<const int32_t>> histories,
                           int32_t* next) {
    const int64_t b = static_cast<int64_t>(caches.size());
    check(params.size() == caches.size(), "decode_batch_sample: one SamplingParams per sequence (got ", params.size(),
          " for ", b, ")");
    const bool f32 = launch_decode_step(caches, tokens) && fusion_.host_io;
    sample_rows(b, f32, params, histories, next);
    for (Cache* cache : caches) cache->advance(1);
  }

 private:
  /// Uploads the step's inputs and enqueues one decode step (the graph of this batch size);
  /// returns whether it ran the fused chain (its logits are then fp32 in logits_f32_).
  bool launch_decode_step(std::span<Cache* const> caches, std::span<const int32_t> tokens) {
    const ModelConfig& c = host_.config;
    const int64_t b = static_cast<int64_t>(caches.size());
    check(b > 0 && tokens.size() == caches.size(), "decode_batch: one token per sequence");
    cuda::check_token_ids(tokens.data(), b, c.vocab_size);
    int64_t max_len = 0;
    for (Cache* cache : caches) {
      cache->reserve_more(1);
      max_len = std::max(max_len, cache->capacity());
    }
    ensure_scratch(b);
    ensure_decode_plan(b, max_len, caches[0]->arena().storage().block_shift());
    bind_caches(caches);
    upload_block_tables(caches);
    const bool fused = fused_decode(b);
    // ids | positions | lengths in one transfer
    step_host_.resize(static_cast<size_t>(3 * b));
    int* step = fused && fusion_.host_io ? step_pinned_.data() : step_host_.data();
    for (int64_t i = 0; i < b; ++i) {
      step[i] = tokens[i];
      step[b + i] = static_cast<int>(caches[i]->length());
      step[2 * b + i] = static_cast<int>(caches[i]->length() + 1);
    }
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(step_dev_.data(), step, 3 * b * sizeof(int), cudaMemcpyHostToDevice, stream_));
    if (!fused)  // the fused chain reads the ids where they land
      TURBINE_CUDA_CHECK(cudaMemcpyAsync(ids_.data(), step_dev_.data(), b * sizeof(int), cudaMemcpyDeviceToDevice, stream_));
    // A graph per batch width; past 8 sequences only for a width seen twice in a row (a serving
    // engine's batch shrinking at the end of a load would otherwise capture one per step).
    const bool repeat = b == last_width_;
    last_width_ = b;
    const auto found = graphs_.find(b);
    if (use_graphs_ && c.rope_scaling.kind != RopeScaling::Kind::Dynamic &&
        ((found != graphs_.end() && found->second) || b <= cuda::kGemvMaxTokens || repeat)) {
      cudaGraphExec_t& exec = graphs_[b];
      if (!exec) {
        cudaGraph_t graph = nullptr;
        TURBINE_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        enqueue_decode(b);
        TURBINE_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
        TURBINE_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
        TURBINE_CUDA_CHECK(cudaGraphDestroy(graph));
      }
      TURBINE_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
    } else {
      enqueue_decode(b);
    }
    return fused;
  }

  /// Samples one id per row of the step's logits on the device (fp32 rows when `f32`).
  void sample_rows(int64_t b, bool f32, std::span<const cuda::SamplingParams> params,
                   std::span<const std::span<const int32_t>> histories, int32_t* next) {
    const int vocab = static_cast<int>(host_.config.vocab_size);
    if (sample_params_.size() < static_cast<size_t>(b)) {
      sample_params_ = cuda::DeviceBuffer<cuda::SamplingParams>(static_cast<size_t>(max_batch_), "sampling parameters");
      sample_params_pinned_ = cuda::PinnedBuffer<cuda::SamplingParams>(static_cast<size_t>(max_batch_));
      sample_ids_ = cuda::DeviceBuffer<int32_t>(static_cast<size_t>(max_batch_), "sampled ids");
      sample_ids_pinned_ = cuda::PinnedBuffer<int32_t>(static_cast<size_t>(max_batch_));
    }
    std::copy(params.begin(), params.end(), sample_params_pinned_.data());
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(sample_params_.data(), sample_params_pinned_.data(), b * sizeof(cuda::SamplingParams),
                                       cudaMemcpyHostToDevice, stream_));
    // The repetition penalty reads each row's history: [b, longest] ids padded with -1.
    int max_history = 0;
    const bool penalty = std::any_of(params.begin(), params.end(), [](const auto& p) { return p.repetition_penalty != 1.0f; });
    if (penalty) {
      check(histories.size() == params.size(), "decode_batch_sample: a repetition penalty needs every sequence's history");
      for (const auto& h : histories) max_history = std::max(max_history, static_cast<int>(h.size()));
      history_host_.assign(static_cast<size_t>(b) * std::max(max_history, 1), -1);
      for (int64_t i = 0; i < b; ++i) std::copy(histories[i].begin(), histories[i].end(), history_host_.begin() + i * max_history);
      if (history_dev_.size() < history_host_.size()) history_dev_ = cuda::DeviceBuffer<int32_t>(history_host_.size() * 2, "token history");
      TURBINE_CUDA_CHECK(cudaMemcpyAsync(history_dev_.data(), history_host_.data(), history_host_.size() * sizeof(int32_t),
                                         cudaMemcpyHostToDevice, stream_));
    }
    const int32_t* history = penalty ? history_dev_.data() : nullptr;
    const int bb = static_cast<int>(b);
    if (f32) {
      if (!sampler_f32_ || sampler_f32_->max_batch() < bb) sampler_f32_ = std::make_unique<cuda::GpuSampler<float>>(static_cast<int>(max_batch_), vocab);
      sampler_f32_->sample(logits_f32_.data(), bb, vocab, sample_params_.data(), history, nullptr, max_history, sample_ids_.data(), stream_);
    } else {
      if (!sampler_ || sampler_->max_batch() < bb) sampler_ = std::make_unique<cuda::GpuSampler<T>>(static_cast<int>(max_batch_), vocab);
      sampler_->sample(logits_.data(), bb, vocab, sample_params_.data(), history, nullptr, max_history, sample_ids_.data(), stream_);
    }
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(sample_ids_pinned_.data(), sample_ids_.data(), b * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::copy(sample_ids_pinned_.data(), sample_ids_pinned_.data() + b, next);
  }

 public:

  /// Benchmark aid: replays the decode-step graph that the last decode_batch() over these caches
  /// captured, `steps` times back to back, and returns the mean device time of a step in ms. The
  /// caches do not advance (every replay rewrites the same positions) and no logits are copied.
  float time_decode_graph(std::span<Cache* const> caches, int steps) {
    const int64_t b = static_cast<int64_t>(caches.size());
    bind_caches(caches);
    auto it = graphs_.find(b);
    check(it != graphs_.end() && it->second && steps > 0,
          "time_decode_graph: run decode_batch() on these caches first (with CUDA graphs on)");
    return replay_ms(it->second, steps);
  }

  /// Benchmark aid: where the persistent decode kernel's time goes (DecodeFusion::persistent, one
  /// sequence). Captures the step of this cache afresh with the kernel's clock record on
  /// (PersistentStep::phase_ns), replays it `steps` times and returns the mean microseconds of one
  /// layer's QKV, attention, O, gate/up and down phases, each up to the barrier after it, and of the
  /// kernel; the logits and cache it leaves are meaningless. Empty where the step does not run it.
  std::vector<double> persistent_phase_us(Cache& cache, int steps) {
    Cache* one = &cache;
    bind_caches(std::span<Cache* const>(&one, 1));
    check(steps > 0, "persistent_phase_us: steps > 0");
    if (!persistent_decode(1)) return {};
    const size_t layers = layers_.size(), points = 1 + 5 * layers;
    cuda::DeviceBuffer<unsigned long long> ns(points, "phase clock");
    persistent_phase_ns_ = ns.data();
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    TURBINE_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    enqueue_decode(1);
    TURBINE_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    persistent_phase_ns_ = nullptr;
    TURBINE_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    TURBINE_CUDA_CHECK(cudaGraphDestroy(graph));
    std::vector<unsigned long long> host(points);
    std::vector<double> us(6, 0.0);
    for (int s = 0; s < steps; ++s) {
      TURBINE_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
      TURBINE_CUDA_CHECK(cudaMemcpyAsync(host.data(), ns.data(), points * sizeof(host[0]), cudaMemcpyDeviceToHost, stream_));
      TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
      for (size_t i = 1; i < points; ++i) us[(i - 1) % 5] += double(host[i] - host[i - 1]) * 1e-3;
      us[5] += double(host[points - 1] - host[0]) * 1e-3;
    }
    cudaGraphExecDestroy(exec);
    for (size_t k = 0; k < 5; ++k) us[k] /= double(steps) * double(layers);
    us[5] /= double(steps);
    return us;
  }

  /// Benchmark aid: what a kind of kernel costs the decode chain. Captures the step of these
  /// caches afresh (the inputs of the last decode_batch()), disables every kernel node whose
  /// (mangled) function name contains `name_part` or one of its '|'-separated alternatives
  /// (cudaGraphNodeSetEnabled: the node runs as an empty one), replays it `steps` times and
  /// returns the mean device time of a step in ms; the logits and caches it leaves are
  /// meaningless. `disabled`: how many nodes it turned off.
  float time_decode_graph_without(std::span<Cache* const> caches, int steps, const std::string& name_part,
                                  int* disabled) {
    const int64_t b = static_cast<int64_t>(caches.size());
    bind_caches(caches);
    check(steps > 0 && !name_part.empty(), "time_decode_graph_without: steps > 0 and a name part");
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    TURBINE_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    enqueue_decode(b);
    TURBINE_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    TURBINE_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    size_t count = 0;
    TURBINE_CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &count));
    std::vector<cudaGraphNode_t> nodes(count);
    TURBINE_CUDA_CHECK(cudaGraphGetNodes(graph, nodes.data(), &count));
    int off = 0;
    for (cudaGraphNode_t node : nodes) {
      cudaGraphNodeType type;
      TURBINE_CUDA_CHECK(cudaGraphNodeGetType(node, &type));
      if (type != cudaGraphNodeTypeKernel) continue;
      cudaKernelNodeParams params{};
      TURBINE_CUDA_CHECK(cudaGraphKernelNodeGetParams(node, &params));
      const char* name = nullptr;
      if (cudaFuncGetName(&name, params.func) != cudaSuccess || !name) continue;
      bool match = false;  // name_part: alternatives separated by '|'
      for (size_t from = 0; from <= name_part.size() && !match;) {
        const size_t to = std::min(name_part.find('|', from), name_part.size());
        match = to > from &&
                std::string_view(name).find(std::string_view(name_part).substr(from, to - from)) != std::string_view::npos;
        from = to + 1;
      }
      if (!match) continue;
      TURBINE_CUDA_CHECK(cudaGraphNodeSetEnabled(exec, node, 0));
      ++off;
    }
    if (disabled) *disabled = off;
    TURBINE_CUDA_CHECK(cudaGraphLaunch(exec, stream_));  // warm
    const float ms = replay_ms(exec, steps);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    return ms;
  }

 private:
  // The mean device time of `steps` back-to-back replays of a graph on the model's stream, in ms.
  float replay_ms(cudaGraphExec_t exec, int steps) {
    cudaEvent_t start, stop;
    TURBINE_CUDA_CHECK(cudaEventCreate(&start));
    TURBINE_CUDA_CHECK(cudaEventCreate(&stop));
    TURBINE_CUDA_CHECK(cudaEventRecord(start, stream_));
    for (int i = 0; i < steps; ++i) TURBINE_CUDA_CHECK(cudaGraphLaunch(exec, stream_));
    TURBINE_CUDA_CHECK(cudaEventRecord(stop, stream_));
    TURBINE_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.f;
    TURBINE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return ms / static_cast<float>(steps);
  }

  /// Weight scheme quant::Awq / quant::Rtn: the Linears are 4-bit (backend/cuda/gemv_w4.cuh).
  static constexpr bool kW4 = S::weight_scheme::quantized;
  /// 4-bit weights in groups of 128 (the persistent decode kernel's scale-after arithmetic).
  static constexpr bool kW4Group128 = kW4 && S::weight_scheme::group == 128;
  static_assert(!kW4 || std::is_same_v<T, __half>, "4-bit weights on turbine::Cuda run in f16: use turbine::f16");

  /// A 4-bit matrix on the device.
  struct W4Buffers {
    cuda::DeviceBuffer<uint32_t> qweight, params;
    cuda::W4Matrix m;
  };
  struct Layer {
    cuda::DeviceBuffer<T> attn_norm, mlp_norm, wqkv, bqkv, wo, w_gate_up, w_down;
    W4Buffers wqkv4, wo4, w_gate_up4, w_down4;  // kW4 only
  };

  /// Uploads the row-wise concatenation of 4-bit `parts` (same column count and group) in the GPU layout.
  W4Buffers upload_w4(std::initializer_list<const WeightMatrix*> parts) {
    W4Buffers b;
    std::vector<uint32_t> q, p;
    int n = 0, k = 0, group = 0;
    for (const WeightMatrix* m : parts) {
      const cuda::W4Host h = cuda::w4_pack(*m);
      check(n == 0 || (h.k == k && h.group == group), "4-bit weights: fused matrices differ in width or group size");
      q.insert(q.end(), h.qweight.begin(), h.qweight.end());
      p.insert(p.end(), h.params.begin(), h.params.end());
      n += h.n;
      k = h.k;
      group = h.group;
    }
    b.qweight = cuda::DeviceBuffer<uint32_t>(q.size(), "model weights (4-bit)");
    b.params = cuda::DeviceBuffer<uint32_t>(p.size(), "model weights (4-bit scales)");
    TURBINE_CUDA_CHECK(cudaMemcpy(b.qweight.data(), q.data(), b.qweight.bytes(), cudaMemcpyHostToDevice));
    TURBINE_CUDA_CHECK(cudaMemcpy(b.params.data(), p.data(), b.params.bytes(), cudaMemcpyHostToDevice));
    b.m = cuda::W4Matrix{b.qweight.data(), reinterpret_cast<const __half2*>(b.params.data()), n, k, group};
    weight_bytes_ += b.qweight.bytes() + b.params.bytes();
    return b;
  }

  // The dequantized-weights path (w4_gemm_ off) multiplies a dequantized copy of one matrix at a time.
  void make_w4_scratch() {
    if (w4_scratch_.size()) return;
    const ModelConfig& c = host_.config;
    const int64_t most = std::max({(c.q_size() + 2 * c.kv_size()) * c.hidden_size, c.hidden_size * c.q_size(),
                                   2 * c.intermediate_size * c.hidden_size, c.hidden_size * c.intermediate_size});
    w4_scratch_ = cuda::DeviceBuffer<T>(static_cast<size_t>(most), "dequantized weights (4-bit GEMM scratch)");
  }

  /// y = x W^T for `t` tokens with one of a layer's Linears: T weights through cuda::linear, 4-bit
  /// weights through the W4A16 GEMV (1..8 tokens), the W4A16 tensor-core GEMM (gemm_w4, up to
  /// w4_gemm_max_tokens_) and above through a dequantized copy and cuBLASLt.
  void linear(const cuda::DeviceBuffer<T>& w, const W4Buffers& w4, const T* x, T* y, int t, int n, int k) {
    const T* no_bias = nullptr;
    if constexpr (kW4) {
      if (t <= cuda::kGemvMaxTokens) return cuda::gemv_w4(w4.m, x, no_bias, y, t, stream_, true, fusion_.w4);
      if (w4_gemm_ && t <= w4_gemm_max_tokens_)
        return cuda::gemm_w4(w4.m, x, no_bias, y, t, stream_, &*w4_gemm_workspace_);
      cuda::w4_dequantize(w4.m, w4_scratch_.data(), stream_);
      cuda::linear(gemm_, x, static_cast<const T*>(w4_scratch_.data()), no_bias, y, t, n, k, stream_);
    } else {
      cuda::linear(gemm_, x, w.data(), no_bias, y, t, n, k, stream_);
    }
  }

  /// Uploads the row-wise concatenation of `parts` (same column count) converted to T.
  cuda::DeviceBuffer<T> upload(std::initializer_list<const WeightMatrix*> parts) {
    int64_t rows = 0;
    const int64_t cols = (*parts.begin())->cols;
    for (const WeightMatrix* m : parts) rows += m->rows;
    cuda::DeviceBuffer<T> out(static_cast<size_t>(rows * cols), "model weights");
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<T> staged;
    constexpr int64_t kChunkRows = 1024;
    int64_t done = 0;
    constexpr StorageType kNative = std::is_same_v<T, __half> ? StorageType::F16 : StorageType::BF16;
    for (const WeightMatrix* m : parts) {
      if (m->type == kNative) {  // stored in the GPU's precision already: copy as is
        TURBINE_CUDA_CHECK(cudaMemcpy(out.data() + done * cols, m->data, m->nbytes(), cudaMemcpyHostToDevice));
        done += m->rows;
        continue;
      }
      for (int64_t r0 = 0; r0 < m->rows; r0 += kChunkRows) {
        const int64_t nr = std::min(kChunkRows, m->rows - r0);
        staged.resize(static_cast<size_t>(nr * cols));
        for (int64_t r = 0; r < nr; ++r) {
          io::dequantize_row(m->type, m->row(r0 + r), row.data(), cols);
          for (int64_t j = 0; j < cols; ++j) staged[r * cols + j] = convert(row[j]);
        }
        TURBINE_CUDA_CHECK(cudaMemcpy(out.data() + (done + r0) * cols, staged.data(), staged.size() * sizeof(T),
                                      cudaMemcpyHostToDevice));
      }
      done += m->rows;
    }
    weight_bytes_ += out.bytes();
    return out;
  }
  cuda::DeviceBuffer<T> upload_vector(const std::vector<float>& v) {
    std::vector<T> staged(v.size());
    for (size_t i = 0; i < v.size(); ++i) staged[i] = convert(v[i]);
    cuda::DeviceBuffer<T> out(v.size(), "model weights");
    TURBINE_CUDA_CHECK(cudaMemcpy(out.data(), staged.data(), staged.size() * sizeof(T), cudaMemcpyHostToDevice));
    weight_bytes_ += out.bytes();
    return out;
  }
  static T convert(float f) {
    uint16_t bits = std::is_same_v<T, __half> ? f32_to_fp16(f) : f32_to_bf16(f);
    T t;
    std::memcpy(&t, &bits, 2);
    return t;
  }
  void set_inv_freq(const std::vector<float>& f) {
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(inv_freq_.data(), f.data(), f.size() * sizeof(float), cudaMemcpyHostToDevice, stream_));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  /// Scratch for up to `tokens` tokens; grows (outside decode) when a longer chunk comes.
  void ensure_scratch(int64_t tokens) {
    if (tokens <= scratch_tokens_) return;
    const ModelConfig& c = host_.config;
    const size_t t = static_cast<size_t>(tokens);
    ids_ = cuda::DeviceBuffer<int32_t>(t, "token ids");
    residual_ = cuda::DeviceBuffer<float>(t * c.hidden_size, "activations");
    residual2_ = cuda::DeviceBuffer<float>(t * c.hidden_size, "activations");
    h_ = cuda::DeviceBuffer<T>(t * c.hidden_size, "activations");
    delta_ = cuda::DeviceBuffer<T>(t * c.hidden_size, "activations");
    norm_stats_ = cuda::DeviceBuffer<float>(2 * t * stats_stride(), "activations");
    qkv_ = cuda::DeviceBuffer<T>(t * (c.q_size() + 2 * c.kv_size()), "activations");
    attn_ = cuda::DeviceBuffer<T>(t * c.q_size(), "activations");
    q_ = cuda::DeviceBuffer<T>(t * c.q_size(), "activations");
    gate_up_ = cuda::DeviceBuffer<T>(t * 2 * c.intermediate_size, "activations");
    act_ = cuda::DeviceBuffer<T>(t * c.intermediate_size, "activations");
    logits_ = cuda::DeviceBuffer<T>(t * c.vocab_size, "logits");
    scratch_tokens_ = tokens;
    drop_graphs();  // the graphs baked the old scratch addresses
  }

  /// The layer stack from the embedding to the final norm, for `t` tokens whose ids are in ids_.
  /// `attend(layer)` enqueues rope + attention for one layer (prefill and decode differ there).
  template <class Attend>
  void enqueue_layers(int64_t t, Attend&& attend) {
    const ModelConfig& c = host_.config;
    const int hidden = static_cast<int>(c.hidden_size), inter = static_cast<int>(c.intermediate_size);
    const int qkv_rows = static_cast<int>(c.q_size() + 2 * c.kv_size());
    const int tt = static_cast<int>(t);
    cuda::embedding(embed_.data(), ids_.data(), residual_.data(), tt, hidden, static_cast<int>(c.vocab_size), stream_);
    cuda::rms_norm(residual_.data(), layers_[0].attn_norm.data(), h_.data(), tt, hidden, c.rms_norm_eps, stream_);
    for (size_t li = 0; li < layers_.size(); ++li) {
      Layer& L = layers_[li];
      linear(L.wqkv, L.wqkv4, h_.data(), qkv_.data(), tt, qkv_rows, hidden);
      attend(li);
      linear(L.wo, L.wo4, attn_.data(), delta_.data(), tt, hidden, static_cast<int>(c.q_size()));
      cuda::add_rms_norm(residual_.data(), delta_.data(), L.mlp_norm.data(), h_.data(), tt, hidden, c.rms_norm_eps, stream_);
      linear(L.w_gate_up, L.w_gate_up4, h_.data(), gate_up_.data(), tt, 2 * inter, hidden);
      cuda::silu_mul_fused(gate_up_.data(), act_.data(), tt, inter, stream_);
      linear(L.w_down, L.w_down4, act_.data(), delta_.data(), tt, hidden, inter);
      const T* next_norm = li + 1 < layers_.size() ? layers_[li + 1].attn_norm.data() : final_norm_.data();
      cuda::add_rms_norm(residual_.data(), delta_.data(), next_norm, h_.data(), tt, hidden, c.rms_norm_eps, stream_);
    }
  }

  /// rope + cache store parameters for one layer; the caller fills positions and caches.
  cuda::RopeQkv<T> rope_params(size_t li, int64_t t) {
    const ModelConfig& c = host_.config;
    const int64_t qkv_rows = c.q_size() + 2 * c.kv_size();
    cuda::RopeQkv<T> r;
    r.q = qkv_.data();
    r.k = qkv_.data() + c.q_size();
    r.v = qkv_.data() + c.q_size() + c.kv_size();
    r.q_stride = r.k_stride = r.v_stride = qkv_rows;
    if (layers_[li].bqkv.size()) {
      r.q_bias = layers_[li].bqkv.data();
      r.k_bias = r.q_bias + c.q_size();
      r.v_bias = r.k_bias + c.kv_size();
    }
    r.inv_freq = inv_freq_.data();
    r.tokens = static_cast<int>(t);
    r.heads = static_cast<int>(c.num_heads);
    r.kv_heads = static_cast<int>(c.num_kv_heads);
    r.head_dim = static_cast<int>(c.head_dim);
    return r;
  }

  cpu::AttentionShape attention_shape() const {
    const ModelConfig& c = host_.config;
    return {c.num_heads, c.num_kv_heads, c.head_dim, c.sliding_window};
  }

  /// The LM head over rows [from, t) of h into logits_.
  void enqueue_lm_head(int64_t t, int64_t from) {
    const ModelConfig& c = host_.config;
    if constexpr (kW4)
      if (lm_head_w4_) return enqueue_lm_head_w4(t, from);
    const T* head = lm_head_tied_ ? embed_.data() : lm_head_.data();
    cuda::linear(gemm_, h_.data() + from * c.hidden_size, head, static_cast<const T*>(nullptr), logits_.data(),
                 static_cast<int>(t - from), static_cast<int>(c.vocab_size), static_cast<int>(c.hidden_size), stream_);
  }

  /// enqueue_lm_head with a 4-bit head: the GEMV up to kGemvMaxTokens rows, else gemm_w4 on row
  /// slices of at most w4_gemm_max_tokens_ (the dequantized-weights path's scratch is sized for the
  /// layers' matrices, not the vocabulary).
  void enqueue_lm_head_w4(int64_t t, int64_t from) {
    const ModelConfig& c = host_.config;
    const int64_t hidden = c.hidden_size, vocab = c.vocab_size;
    const T* no_bias = nullptr;
    for (int64_t r0 = from; r0 < t;) {
      const int n = static_cast<int>(std::min<int64_t>(t - r0, w4_gemm_max_tokens_));
      const T* x = h_.data() + r0 * hidden;
      T* y = logits_.data() + (r0 - from) * vocab;
      if (n <= cuda::kGemvMaxTokens) cuda::gemv_w4(lm_head4_.m, x, no_bias, y, n, stream_, true, fusion_.w4);
      else cuda::gemm_w4(lm_head4_.m, x, no_bias, y, n, stream_, &*w4_gemm_workspace_);
      r0 += n;
    }
  }

  /// Prompt chunk of one sequence: tensor-core attention over its cache.
  void prefill(Cache& cache, const int32_t* ids, int64_t t, int64_t logits_from, float* dst) {
    const ModelConfig& c = host_.config;
    ensure_scratch(t);
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(ids_.data(), ids, t * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    const int64_t pos0 = cache.length();
    const int64_t qkv_rows = c.q_size() + 2 * c.kv_size();
    // The sequence's block table, for the cache store and the attention of every layer.
    const std::span<const int32_t> blocks = cache.blocks();
    if (prefill_table_.size() < blocks.size()) prefill_table_ = cuda::DeviceBuffer<int>(blocks.size() * 2, "block table");
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(prefill_table_.data(), blocks.data(), blocks.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
    auto& storage = cache.arena().storage();
    const cuda::PagedKvTable table{prefill_table_.data(), static_cast<int>(blocks.size()), storage.block_shift()};
    enqueue_layers(t, [&](size_t li) {
      cuda::RopeQkv<T> r = rope_params(li, t);
      r.k_cache = storage.keys(li);
      r.v_cache = storage.values(li);
      r.pos0 = static_cast<int>(pos0);
      r.cache_positions = static_cast<int>(cache.capacity());
      r.table = table;
      cuda::rope_qkv<T, KV>(r, stream_);
      // The prefill kernel wants q contiguous; it sits strided in the fused QKV rows.
      TURBINE_CUDA_CHECK(cudaMemcpy2DAsync(q_.data(), c.q_size() * sizeof(T), qkv_.data(), qkv_rows * sizeof(T),
                                           c.q_size() * sizeof(T), t, cudaMemcpyDeviceToDevice, stream_));
      cuda::attention_prefill<T, KV>(q_.data(), storage.keys(li), storage.values(li), attn_.data(), t, pos0, attention_shape(), stream_,
                              0, table);
    });
    if (logits_from >= 0) {
      enqueue_lm_head(t, logits_from);
      copy_logits(t - logits_from, dst);
    }
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  /// One token for each of `b` bound sequences; everything it reads on the device (ids,
  /// positions, lengths, cache pointers) stays at fixed addresses, so it can be graph-captured.
  void enqueue_decode(int64_t b) {
    if (fused_decode(b)) return enqueue_decode_fused(b);
    const ModelConfig& c = host_.config;
    const size_t layers = layers_.size();
    enqueue_layers(b, [&](size_t li) {
      cuda::RopeQkv<T> r = rope_params(li, b);
      r.positions = step_dev_.data() + b;
      r.k_caches = tok_caches_.data() + li * max_batch_;
      r.v_caches = tok_caches_.data() + (layers + li) * max_batch_;
      r.cache_positions = static_cast<int>(c.max_position_embeddings);
      r.table = decode_table();
      cuda::rope_qkv<T, KV>(r, stream_);
      // q of each sequence's single query sits at the start of its QKV row: stride qkv_rows.
      const int64_t qkv_rows = c.q_size() + 2 * c.kv_size();
      const T* q = qkv_.data();
      if (b > 1) {
        TURBINE_CUDA_CHECK(cudaMemcpy2DAsync(q_.data(), c.q_size() * sizeof(T), qkv_.data(), qkv_rows * sizeof(T),
                                             c.q_size() * sizeof(T), b, cudaMemcpyDeviceToDevice, stream_));
        q = q_.data();
      }
      decode_attn_->block_warps = fusion_.attention_warps;
      (*decode_attn_)(q, reinterpret_cast<const T* const*>(tok_caches_.data() + li * max_batch_),
                      reinterpret_cast<const T* const*>(tok_caches_.data() + (layers + li) * max_batch_), 0,
                      step_dev_.data() + 2 * b, static_cast<int>(b), attn_.data(), stream_, false, 1, true, decode_table());
    });
    enqueue_lm_head(b, 0);
  }

  // 4-bit models run the same fused chain through the W4 GEMV (gemv_w4.cuh: the same x and output
  // policies on the 4-bit weight stream); DecodeFusion::none() keeps their unfused step selectable.
  bool fused_decode(int64_t b) const { return b <= cuda::kGemvMaxTokens && fusion_.any(); }

  /// The decode step as the fused chain (see the top of this file); each fold can be turned off.
  void enqueue_decode_fused(int64_t b) {
    const ModelConfig& c = host_.config;
    const int hidden = static_cast<int>(c.hidden_size), inter = static_cast<int>(c.intermediate_size);
    const int qkv_rows = static_cast<int>(c.q_size() + 2 * c.kv_size()), vocab = static_cast<int>(c.vocab_size);
    const int tt = static_cast<int>(b);
    const size_t layers = layers_.size();
    const DecodeFusion& f = fusion_;
    const bool norm = f.norm && cuda::gemv_norm_supported<T>(tt, hidden);
    // Tile sums: the residual is updated in place in residual_ by the O and down epilogues.
    const bool stats = norm && f.norm_stats;
    const int sstride = stats_stride();
    float* const stats_attn = norm_stats_.data();                       // down -> next QKV
    float* const stats_mlp = norm_stats_.data() + size_t(tt) * sstride;  // O -> gate/up
    // The GEMV epilogue stores k and v as T: a quantized cache takes the rope_qkv kernel, which quantizes.
    const bool rope = f.rope && c.head_dim % 16 == 0 && !KV::quantized;
    const T* no_bias = nullptr;
    // A layer's projection with x as stored or normalized in the prologue: T or 4-bit weights.
    auto proj = [&](const cuda::DeviceBuffer<T>& w, const W4Buffers& w4, const T* x, T* y, int n, int k) {
      if constexpr (kW4) cuda::gemv_w4(w4.m, x, no_bias, y, tt, stream_, true, f.w4);
      else cuda::gemv(w.data(), x, no_bias, y, tt, n, k, stream_);
    };
    auto proj_norm = [&](const cuda::DeviceBuffer<T>& w, const W4Buffers& w4, const cuda::NormInput<T>& in, T* y, int n) {
      if constexpr (kW4) cuda::gemv_w4_norm(w4.m, in, no_bias, y, tt, stream_, true, f.w4);
      else cuda::gemv_norm(w.data(), in, no_bias, y, tt, n, hidden, stream_);
    };
    const int* ids = step_dev_.data();  // ids | positions | lengths
    const int* positions = step_dev_.data() + b;
    const int* lengths = step_dev_.data() + 2 * b;
    float* res[2] = {residual_.data(), residual2_.data()};  // norm: read one, block 0 writes the other
    auto stats_input = [&](const float* st, const T* gamma) {
      cuda::NormInput<T> in;
      in.residual = residual_.data();
      in.stats = st;
      in.stats_stride = sstride;
      in.gamma = gamma;
      in.eps = c.rms_norm_eps;
      return in;
    };
    // out.residual += x W^T with the tile sums for the next norm (stats). In place: the O GEMV's
    // read-modify-write of residual_ comes after the QKV GEMV that read it only through the
    // attention kernel between them, whose split-0 blocks always pass pdl_wait; an attention
    // kernel whose every block could skip that wait would make this a race.
    auto proj_residual = [&](const cuda::DeviceBuffer<T>& w, const W4Buffers& w4, const T* x, float* st, int k) {
      const cuda::ResidualOutput<T> out{residual_.data(), st, sstride, nullptr};
      if constexpr (kW4) cuda::gemv_w4_residual(w4.m, x, out, tt, stream_, true, f.w4);
      else cuda::gemv_residual(w.data(), x, out, tt, hidden, k, stream_);
    };
    auto norm_input = [&](const float* r, const T* delta, const T* gamma, float* r_out) {
      cuda::NormInput<T> in;
      in.residual = r;
      in.delta = delta;
      if (!r) {
        in.embed = embed_.data();
        in.ids = ids;
        in.vocab = vocab;
      }
      in.gamma = gamma;
      in.eps = c.rms_norm_eps;
      in.residual_out = r_out;
      return in;
    };
    const bool persistent = persistent_decode(tt);
    if (persistent) enqueue_persistent_layers(ids, positions, lengths);
    if (!norm && !persistent) {
      cuda::embedding(embed_.data(), ids, residual_.data(), tt, hidden, vocab, stream_);
      cuda::rms_norm(residual_.data(), layers_[0].attn_norm.data(), h_.data(), tt, hidden, c.rms_norm_eps, stream_);
    }
    for (size_t li = 0; li < (persistent ? 0 : layers); ++li) {
      Layer& L = layers_[li];
      T* const* k_caches = tok_caches_.data() + li * max_batch_;
      T* const* v_caches = tok_caches_.data() + (layers + li) * max_batch_;
      // stats: layer 0's prologue gathers the embedding and block 0 writes it to residual_ (res[0])
      const cuda::NormInput<T> attn_in =
          li == 0    ? norm_input(nullptr, nullptr, L.attn_norm.data(), res[stats ? 0 : 1])
          : stats    ? stats_input(stats_attn, L.attn_norm.data())
                     : norm_input(res[0], delta_.data(), L.attn_norm.data(), res[1]);
      const T* q = qkv_.data();
      bool copied_q = false;  // then the attention follows a copy: no programmatic launch
      if (rope) {
        cuda::RopeKvOutput<T> o;
        o.q = q_.data();
        o.k_caches = k_caches;
        o.v_caches = v_caches;
        o.positions = positions;
        o.inv_freq = inv_freq_.data();
        o.bias = L.bqkv.size() ? L.bqkv.data() : nullptr;
        o.table = decode_table();
        o.heads = static_cast<int>(c.num_heads);
        o.kv_heads = static_cast<int>(c.num_kv_heads);
        o.head_dim = static_cast<int>(c.head_dim);
        if constexpr (kW4) {
          if (norm) cuda::gemv_w4_norm_rope(L.wqkv4.m, attn_in, o, tt, stream_, true, f.w4);
          else cuda::gemv_w4_rope(L.wqkv4.m, h_.data(), o, tt, stream_, true, f.w4);
        } else {
          if (norm) cuda::gemv_norm_rope(L.wqkv.data(), attn_in, o, tt, hidden, stream_);
          else cuda::gemv_rope(L.wqkv.data(), h_.data(), o, tt, hidden, stream_);
        }
        q = q_.data();
      } else {
        if (norm) proj_norm(L.wqkv, L.wqkv4, attn_in, qkv_.data(), qkv_rows);
        else proj(L.wqkv, L.wqkv4, h_.data(), qkv_.data(), qkv_rows, hidden);
        cuda::RopeQkv<T> r = rope_params(li, b);
        r.positions = positions;
        r.k_caches = k_caches;
        r.v_caches = v_caches;
        r.cache_positions = static_cast<int>(c.max_position_embeddings);
        r.table = decode_table();
        cuda::rope_qkv<T, KV>(r, stream_);
        if (b > 1) {  // attention wants q contiguous; it sits strided in the fused QKV rows
          TURBINE_CUDA_CHECK(cudaMemcpy2DAsync(q_.data(), c.q_size() * sizeof(T), qkv_.data(), qkv_rows * sizeof(T),
                                               c.q_size() * sizeof(T), b, cudaMemcpyDeviceToDevice, stream_));
          q = q_.data();
          copied_q = true;
        }
      }
      decode_attn_->block_warps = f.attention_warps;
      (*decode_attn_)(q, reinterpret_cast<const T* const*>(k_caches), reinterpret_cast<const T* const*>(v_caches), 0,
                      lengths, tt, attn_.data(), stream_, f.attention, f.attention_min_tiles, !copied_q, decode_table());
      if (stats) proj_residual(L.wo, L.wo4, attn_.data(), stats_mlp, static_cast<int>(c.q_size()));
      else proj(L.wo, L.wo4, attn_.data(), delta_.data(), hidden, static_cast<int>(c.q_size()));
      // gate/up (+ norm prologue) (+ silu(gate) * up epilogue), then down
      const cuda::NormInput<T> mlp_in =
          stats ? stats_input(stats_mlp, L.mlp_norm.data()) : norm_input(res[1], delta_.data(), L.mlp_norm.data(), res[0]);
      if (!norm)
        cuda::add_rms_norm(residual_.data(), delta_.data(), L.mlp_norm.data(), h_.data(), tt, hidden, c.rms_norm_eps, stream_);
      if (f.silu) {
        if constexpr (kW4) {
          if (norm) cuda::gemv_w4_norm_gate_up_silu(L.w_gate_up4.m, mlp_in, act_.data(), tt, stream_, true, f.w4);
          else cuda::gemv_w4_gate_up_silu(L.w_gate_up4.m, h_.data(), act_.data(), tt, stream_, true, f.w4);
        } else {
          if (norm) cuda::gemv_norm_gate_up_silu(L.w_gate_up.data(), mlp_in, act_.data(), tt, inter, hidden, stream_);
          else cuda::gemv_gate_up_silu(L.w_gate_up.data(), h_.data(), act_.data(), tt, inter, hidden, stream_);
        }
      } else {
        if (norm) proj_norm(L.w_gate_up, L.w_gate_up4, mlp_in, gate_up_.data(), 2 * inter);
        else proj(L.w_gate_up, L.w_gate_up4, h_.data(), gate_up_.data(), 2 * inter, hidden);
        cuda::silu_mul_fused(gate_up_.data(), act_.data(), tt, inter, stream_);
      }
      if (stats) proj_residual(L.w_down, L.w_down4, act_.data(), stats_attn, inter);
      else proj(L.w_down, L.w_down4, act_.data(), delta_.data(), hidden, inter);
      if (!norm) {
        const T* next_norm = li + 1 < layers ? layers_[li + 1].attn_norm.data() : final_norm_.data();
        cuda::add_rms_norm(residual_.data(), delta_.data(), next_norm, h_.data(), tt, hidden, c.rms_norm_eps, stream_);
      }
    }
    const T* head = lm_head_tied_ ? embed_.data() : lm_head_.data();
    const cuda::NormInput<T> head_in = norm_input(res[0], delta_.data(), final_norm_.data(), nullptr);
    // With tile sums, the LM head's thousands of blocks would each stage the norm: one kernel instead.
    if (stats || persistent)
      cuda::rms_norm(residual_.data(), final_norm_.data(), h_.data(), tt, hidden, c.rms_norm_eps, stream_);
    const bool staged_norm = norm && !stats && !persistent;
    auto head_gemv = [&](auto* y) {  // fp32 logits (host_io) or T
      if constexpr (kW4) {
        if (lm_head_w4_) {
          if (staged_norm) cuda::gemv_w4_norm(lm_head4_.m, head_in, no_bias, y, tt, stream_, true, f.w4);
          else cuda::gemv_w4(lm_head4_.m, h_.data(), no_bias, y, tt, stream_, true, f.w4);
          return;
        }
      }
      if (staged_norm) cuda::gemv_norm(head, head_in, no_bias, y, tt, vocab, hidden, stream_);
      else cuda::gemv(head, h_.data(), no_bias, y, tt, vocab, hidden, stream_);
    };
    if (f.host_io) head_gemv(logits_f32_.data());
    else head_gemv(logits_.data());
  }

  /// Whether this step of `b` sequences runs the persistent kernel (DecodeFusion::persistent).
  bool persistent_decode(int b) const {
    if constexpr (kW4 && !KV::quantized) {
      return b == 1 && fusion_.persistent && persistent_grid_ > 0 && persistent_layers_.size() == layers_.size();
    } else {
      return false;
    }
  }

  /// The layer stack of a one-sequence step as one persistent kernel; residual_ holds the final residual.
  void enqueue_persistent_layers(const int* ids, const int* positions, const int* lengths) {
    if constexpr (kW4 && !KV::quantized) enqueue_persistent_layers_w4(ids, positions, lengths);
  }
  void enqueue_persistent_layers_w4(const int* ids, const int* positions, const int* lengths)
    requires(kW4 && !KV::quantized)
  {
    const ModelConfig& c = host_.config;
    cuda::PersistentStep a;
    a.layers = persistent_layers_.data();
    a.num_layers = static_cast<int>(layers_.size());
    a.hidden = static_cast<int>(c.hidden_size);
    a.inter = static_cast<int>(c.intermediate_size);
    a.heads = static_cast<int>(c.num_heads);
    a.kv_heads = static_cast<int>(c.num_kv_heads);
    a.head_dim = static_cast<int>(c.head_dim);
    a.window = static_cast<int>(c.sliding_window);
    a.vocab = static_cast<int>(c.vocab_size);
    a.eps = c.rms_norm_eps;
    a.embed = embed_.data();
    a.ids = ids;
    a.positions = positions;
    a.lengths = lengths;
    a.inv_freq = inv_freq_.data();
    a.table = decode_table();
    a.residual = residual_.data();
    a.stats = norm_stats_.data();
    a.stats_stride = stats_stride();
    a.q = q_.data();
    a.act = act_.data();
    a.max_splits = persistent_max_splits_;
    a.part_o = persistent_part_.data();
    a.part_lse = persistent_part_.data() + size_t(a.max_splits) * a.heads * a.head_dim;
    a.barrier = persistent_barrier_.data();
    a.min_split_positions = persistent_min_split_positions_;
    a.phase_ns = persistent_phase_ns_;
    a.prefetch_chunks = fusion_.persistent_prefetch;
    cuda::persistent_decode<kW4Group128>(a, persistent_grid_, persistent_smem_, stream_);
  }

  /// The persistent kernel's per-layer array (it holds the addresses of tok_caches_), its attention
  /// workspace and barrier, and its grid; none where the model's sizes or the GPU do not allow it.
  void build_persistent() {
    if constexpr (kW4 && !KV::quantized) {
      const ModelConfig& c = host_.config;
      const int hidden = static_cast<int>(c.hidden_size), inter = static_cast<int>(c.intermediate_size);
      const int heads = static_cast<int>(c.num_heads), kvh = static_cast<int>(c.num_kv_heads);
      const int hd = static_cast<int>(c.head_dim);
      persistent_grid_ = 0;
      if (layers_.empty() || !cuda::persistent_decode_unsupported(hidden, inter, heads, kvh, hd, layers_[0].wqkv4.m.group).empty())
        return;
      for (const Layer& L : layers_)  // the kernel is compiled for the scheme's group
        for (const W4Buffers* w : {&L.wqkv4, &L.wo4, &L.w_gate_up4, &L.w_down4})
          if ((w->m.group == 128) != kW4Group128) return;
      persistent_smem_ = cuda::persistent_decode_smem(hidden, inter, heads, kvh, hd);
      persistent_grid_ = cuda::persistent_decode_grid<kW4Group128>(persistent_smem_);
      if (persistent_grid_ < kvh) {  // each block takes one (KV head, split) of the attention
        persistent_grid_ = 0;
        return;
      }
      // At most 4 splits: every block of the O projection reads all of them (4 x 16 KB at Llama-3-8B)
      persistent_max_splits_ = std::max(1, std::min(cuda::kPersistentMaxSplits, persistent_grid_ / kvh));
      std::vector<cuda::PersistentLayer> host(layers_.size());
      for (size_t li = 0; li < layers_.size(); ++li) {
        const Layer& L = layers_[li];
        cuda::PersistentLayer& p = host[li];
        p.qkv = L.wqkv4.m;
        p.o = L.wo4.m;
        p.gate_up = L.w_gate_up4.m;
        p.down = L.w_down4.m;
        p.attn_norm = L.attn_norm.data();
        p.mlp_norm = L.mlp_norm.data();
        p.bqkv = L.bqkv.size() ? L.bqkv.data() : nullptr;
        p.k_caches = tok_caches_.data() + li * max_batch_;
        p.v_caches = tok_caches_.data() + (layers_.size() + li) * max_batch_;
      }
      persistent_layers_ = cuda::DeviceBuffer<cuda::PersistentLayer>(host.size(), "persistent decode layers");
      TURBINE_CUDA_CHECK(cudaMemcpy(persistent_layers_.data(), host.data(), host.size() * sizeof(host[0]), cudaMemcpyHostToDevice));
      persistent_part_ = cuda::DeviceBuffer<float>(size_t(persistent_max_splits_) * heads * (hd + 1), "attention splits");
      persistent_barrier_ = cuda::DeviceBuffer<unsigned>(1, "grid barrier");
      TURBINE_CUDA_CHECK(cudaMemset(persistent_barrier_.data(), 0, sizeof(unsigned)));
    }
  }

  void ensure_decode_plan(int64_t b, int64_t max_len, int block_shift) {
    if (decode_attn_ && b <= max_batch_ && max_len <= decode_max_len_ && block_shift == block_shift_) return;
    max_batch_ = std::max<int64_t>({b, max_batch_, max_batch_hint_, 1});
    decode_max_len_ = std::max(max_len, decode_max_len_);
    block_shift_ = block_shift;
    table_stride_ = static_cast<int>((decode_max_len_ + (int64_t(1) << block_shift) - 1) >> block_shift);
    decode_attn_ = std::make_unique<cuda::DecodeAttention<T, KV>>(attention_shape(), static_cast<int>(max_batch_), decode_max_len_);
    tok_caches_ = cuda::DeviceBuffer<T*>(static_cast<size_t>(2 * layers_.size() * max_batch_), "cache pointers");
    tables_dev_ = cuda::DeviceBuffer<int>(static_cast<size_t>(max_batch_ * table_stride_), "block tables");
    tables_host_.clear();
    step_dev_ = cuda::DeviceBuffer<int>(static_cast<size_t>(3 * max_batch_), "decode step");
    step_pinned_ = cuda::PinnedBuffer<int>(static_cast<size_t>(3 * max_batch_));
    const size_t fused_rows = static_cast<size_t>(std::min<int64_t>(max_batch_, cuda::kGemvMaxTokens));
    logits_f32_ = cuda::DeviceBuffer<float>(fused_rows * host_.config.vocab_size, "logits");
    logits_pinned_ = cuda::PinnedBuffer<float>(fused_rows * host_.config.vocab_size);
    bound_ptrs_.clear();
    build_persistent();
    drop_graphs();  // the graphs baked the old plan, workspace and arrays
  }

  /// The decode step's block tables as the kernels read them.
  cuda::PagedKvTable decode_table() const { return {tables_dev_.data(), table_stride_, block_shift_}; }

  /// Writes the batch's block tables where the decode step reads them (a fixed buffer: the
  /// captured graphs stay valid); uploads only what changed since the last step.
  void upload_block_tables(std::span<Cache* const> caches) {
    std::vector<int>& t = tables_scratch_;
    t.assign(static_cast<size_t>(caches.size()) * table_stride_, 0);
    for (size_t i = 0; i < caches.size(); ++i) {
      const std::span<const int32_t> blocks = caches[i]->blocks();
      check(caches[i]->arena().storage().block_shift() == block_shift_, "decode_batch: every cache of a batch needs the same block size");
      check(static_cast<int64_t>(blocks.size()) <= table_stride_, "decode_batch: a block table outgrew the plan");
      std::copy(blocks.begin(), blocks.end(), t.begin() + static_cast<std::ptrdiff_t>(i) * table_stride_);
    }
    if (t == tables_host_) return;
    tables_host_ = t;
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(tables_dev_.data(), tables_host_.data(), t.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
  }

  /// Points the per-layer, per-sequence cache pointer arrays at these caches' pools. Identity is
  /// the device addresses, not the Cache objects (a new cache can live where an old one did).
  void bind_caches(std::span<Cache* const> caches) {
    const size_t layers = layers_.size();
    std::vector<T*> ptrs(2 * layers * max_batch_, nullptr);  // [k|v][layer][sequence]
    for (size_t l = 0; l < layers; ++l)
      for (size_t i = 0; i < caches.size(); ++i) {
        auto& storage = caches[i]->arena().storage();
        ptrs[l * max_batch_ + i] = storage.keys(static_cast<int64_t>(l));
        ptrs[(layers + l) * max_batch_ + i] = storage.values(static_cast<int64_t>(l));
      }
    if (ptrs == bound_ptrs_) return;
    TURBINE_CUDA_CHECK(cudaMemcpy(tok_caches_.data(), ptrs.data(), ptrs.size() * sizeof(T*), cudaMemcpyHostToDevice));
    bound_ptrs_ = std::move(ptrs);
    drop_graphs();
  }
  void drop_graphs() {
    for (auto& [b, exec] : graphs_)
      if (exec) cudaGraphExecDestroy(exec);
    graphs_.clear();
  }

  void copy_logits(int64_t rows, float* dst) {
    const size_t n = static_cast<size_t>(rows * host_.config.vocab_size);
    staged_logits_.resize(n);
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(staged_logits_.data(), logits_.data(), n * sizeof(T), cudaMemcpyDeviceToHost, stream_));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (size_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, &staged_logits_[i], 2);
      dst[i] = std::is_same_v<T, __half> ? fp16_to_f32(bits) : bf16_to_f32(bits);
    }
  }

  ModelWeights host_;
  cudaStream_t stream_ = nullptr;
  cuda::Gemm gemm_;
  cuda::DeviceBuffer<T> embed_, lm_head_, final_norm_;
  bool lm_head_tied_ = false;
  bool lm_head_w4_ = false;  // kW4 with a 4-bit LM head: lm_head4_ holds it, lm_head_ is empty
  W4Buffers lm_head4_;
  std::vector<Layer> layers_;
  cuda::DeviceBuffer<float> inv_freq_;
  size_t weight_bytes_ = 0;
  int64_t scratch_tokens_ = 0;
  cuda::DeviceBuffer<int32_t> ids_;
  cuda::DeviceBuffer<float> residual_, residual2_;
  cuda::DeviceBuffer<float> norm_stats_;  // DecodeFusion::norm_stats: [2][tokens][stats_stride()] tile sums
  int stats_stride() const { return static_cast<int>((host_.config.hidden_size + 15) / 16); }
  cuda::DeviceBuffer<T> h_, delta_, qkv_, q_, attn_, gate_up_, act_, logits_;
  cuda::DeviceBuffer<T> w4_scratch_;  // kW4: one dequantized matrix for the GEMMs
  std::optional<cuda::GemmW4Workspace> w4_gemm_workspace_;  // kW4: gemm_w4's split-k scratch
  std::unique_ptr<cuda::DecodeAttention<T, KV>> decode_attn_;
  int64_t max_batch_ = 0, decode_max_len_ = 0, max_batch_hint_ = 0;
  cuda::DeviceBuffer<T*> tok_caches_;     // [k|v][layer][max_batch_] cache pool pointers
  cuda::DeviceBuffer<int> tables_dev_;    // [max_batch_, table_stride_] the decode step's block tables
  std::vector<int> tables_host_, tables_scratch_;  // what tables_dev_ holds; the next step's
  int table_stride_ = 0, block_shift_ = -1;
  cuda::DeviceBuffer<int> prefill_table_;  // the prefilling sequence's block table
  cuda::DeviceBuffer<int> step_dev_;      // ids | positions | lengths of the decode step
  std::vector<int> step_host_;
  cuda::PinnedBuffer<int> step_pinned_;
  cuda::DeviceBuffer<float> logits_f32_;   // [min(max_batch_, 8), vocab] the fused step's logits
  cuda::PinnedBuffer<float> logits_pinned_;
  // DecodeFusion::persistent: the kernel's layer array, attention splits and grid barrier
  cuda::DeviceBuffer<cuda::PersistentLayer> persistent_layers_;
  cuda::DeviceBuffer<float> persistent_part_;
  cuda::DeviceBuffer<unsigned> persistent_barrier_;
  int persistent_grid_ = 0, persistent_max_splits_ = 1;
  size_t persistent_smem_ = 0;
  int persistent_min_split_positions_ = 32;
  unsigned long long* persistent_phase_ns_ = nullptr;  // persistent_phase_us: the clock record while capturing
  DecodeFusion fusion_ =
      std::getenv("TURBINE_UNFUSED_DECODE") ? DecodeFusion::none() : DecodeFusion::for_model(host_.config);
  std::vector<T*> bound_ptrs_;
  std::map<int64_t, cudaGraphExec_t> graphs_;
  int64_t last_width_ = 0;  // the batch width of the last decode step
  bool use_graphs_ = std::getenv("TURBINE_NO_CUDA_GRAPH") == nullptr;
  // 4-bit Linears of 9..w4_gemm_max_tokens_ tokens: gemm_w4, or (TURBINE_W4_DEQUANT_GEMM set)
  // dequantize + cuBLASLt.
  bool w4_gemm_ = std::getenv("TURBINE_W4_DEQUANT_GEMM") == nullptr;
  // Up to this many tokens gemm_w4 is faster than the dequantized copy + cuBLAS on this device
  // (cuda::gemm_w4_max_useful_tokens, asked at set-up; 4-bit models only).
  int w4_gemm_max_tokens_ = 0;
  std::vector<T> staged_logits_;
  // decode_batch_sample: [max_batch_] parameters and ids (device and pinned), the padded histories
  std::unique_ptr<cuda::GpuSampler<T>> sampler_;
  std::unique_ptr<cuda::GpuSampler<float>> sampler_f32_;
  cuda::DeviceBuffer<cuda::SamplingParams> sample_params_;
  cuda::PinnedBuffer<cuda::SamplingParams> sample_params_pinned_;
  cuda::DeviceBuffer<int32_t> sample_ids_, history_dev_;
  cuda::PinnedBuffer<int32_t> sample_ids_pinned_;
  std::vector<int32_t> history_host_;
};

/// A Spec of the Cuda backend runs on CudaTransformer.
template <class S>
struct ModelTypeOf<S, std::enable_if_t<S::backend::is_gpu>> {
  using type = CudaTransformer<S>;  ///< The model class.
};

}  // namespace turbine
