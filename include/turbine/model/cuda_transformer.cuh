#pragma once
// CudaTransformer<Spec>: the decoder on the GPU. Weights are uploaded once in the Spec's precision
// (GGUF blocks dequantized, safetensors converted), with q/k/v and gate/up fused into one matrix
// each so that a layer is five GEMV/GEMMs. KV cache and scratch are preallocated: nothing is
// allocated while decoding. The single-token decode step is captured in a CUDA graph and replayed.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "../backend/cuda/activation.cuh"
#include "../backend/cuda/attention_decode.cuh"
#include "../backend/cuda/attention_prefill.cuh"
#include "../backend/cuda/cuda.cuh"
#include "../backend/cuda/embedding.cuh"
#include "../backend/cuda/gemm.cuh"
#include "../backend/cuda/norm.cuh"
#include "../backend/cuda/rope.cuh"
#include "../core/half.hpp"
#include "../io/ggml_quants.hpp"
#include "../layers/rotary.hpp"
#include "spec.hpp"
#include "transformer.hpp"
#include "weights.hpp"

namespace turbine {

/// KV cache of one sequence on the GPU: per layer [capacity, kv_heads, head_dim] keys and values.
template <class T>
class DeviceKvCache {
 public:
  DeviceKvCache(const ModelConfig& c, int64_t capacity) : capacity_(capacity), kv_size_(c.kv_size()) {
    for (int64_t l = 0; l < c.num_layers; ++l) {
      k_.emplace_back(static_cast<size_t>(capacity * kv_size_), "KV cache");
      v_.emplace_back(static_cast<size_t>(capacity * kv_size_), "KV cache");
    }
  }
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  void truncate(int64_t n) { length_ = std::min(n, length_); }
  void clear() { length_ = 0; }
  void reserve_more(int64_t extra) const {
    check(length_ + extra <= capacity_, "sequence of ", length_ + extra, " tokens exceeds the context length ", capacity_,
          " (shorten the prompt, lower max_new_tokens, or raise --ctx-size up to the model's limit)");
  }
  void advance(int64_t n) { length_ += n; }
  T* keys(int64_t layer) { return k_[layer].data(); }
  T* values(int64_t layer) { return v_[layer].data(); }

 private:
  std::vector<cuda::DeviceBuffer<T>> k_, v_;
  int64_t capacity_ = 0, kv_size_ = 0, length_ = 0;
};

template <class S>
class CudaTransformer {
 public:
  using spec = S;
  using T = cuda::element_t<typename S::precision>;
  using Cache = DeviceKvCache<T>;
  static constexpr int64_t kPrefillChunk = 1024;

  explicit CudaTransformer(ModelWeights weights) : host_(std::move(weights)) {
    static_assert(!std::is_same_v<typename S::precision, f32>, "turbine::Cuda runs in f16 or bf16: use turbine::f16 or turbine::bf16");
    const ModelConfig& c = host_.config;
    check(cuda::device_count() > 0, "no CUDA device is available (use --device cpu)");
    TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    embed_ = upload({&host_.embed});
    lm_head_tied_ = host_.lm_head.data == host_.embed.data;
    if (!lm_head_tied_) lm_head_ = upload({&host_.lm_head});
    final_norm_ = upload_vector(host_.final_norm);
    for (const LayerWeights& l : host_.layers) {
      Layer d;
      d.attn_norm = upload_vector(l.attn_norm);
      d.mlp_norm = upload_vector(l.mlp_norm);
      d.wqkv = upload({&l.wq, &l.wk, &l.wv});
      d.wo = upload({&l.wo});
      d.w_gate_up = upload({&l.w_gate, &l.w_up});
      d.w_down = upload({&l.w_down});
      if (!l.bq.empty()) {
        std::vector<float> b(l.bq);
        b.insert(b.end(), l.bk.begin(), l.bk.end());
        b.insert(b.end(), l.bv.begin(), l.bv.end());
        d.bqkv = upload_vector(b);
      }
      layers_.push_back(std::move(d));
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

  const ModelConfig& config() const { return host_.config; }
  const ModelWeights& weights() const { return host_; }
  size_t device_weight_bytes() const { return weight_bytes_; }

  Cache new_cache(int64_t capacity = 0) const {
    const int64_t max = host_.config.max_position_embeddings;
    return Cache(host_.config, capacity > 0 ? std::min(capacity, max) : max);
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
    check(b > 0 && tokens.size() == caches.size(), "decode_batch: one token per sequence");
    cuda::check_token_ids(tokens.data(), b, c.vocab_size);
    int64_t max_len = 0;
    for (Cache* cache : caches) {
      cache->reserve_more(1);
      max_len = std::max(max_len, cache->capacity());
    }
    ensure_scratch(b);
    ensure_decode_plan(b, max_len);
    bind_caches(caches);
    // ids | positions | lengths in one transfer
    step_host_.resize(static_cast<size_t>(3 * b));
    for (int64_t i = 0; i < b; ++i) {
      step_host_[i] = tokens[i];
      step_host_[b + i] = static_cast<int>(caches[i]->length());
      step_host_[2 * b + i] = static_cast<int>(caches[i]->length() + 1);
    }
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(step_dev_.data(), step_host_.data(), 3 * b * sizeof(int), cudaMemcpyHostToDevice, stream_));
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(ids_.data(), step_dev_.data(), b * sizeof(int), cudaMemcpyDeviceToDevice, stream_));
    if (use_graphs_ && c.rope_scaling.kind != RopeScaling::Kind::Dynamic) {
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
    copy_logits(b, logits);
    for (Cache* cache : caches) cache->advance(1);
  }

 private:
  struct Layer {
    cuda::DeviceBuffer<T> attn_norm, mlp_norm, wqkv, bqkv, wo, w_gate_up, w_down;
  };

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
    h_ = cuda::DeviceBuffer<T>(t * c.hidden_size, "activations");
    delta_ = cuda::DeviceBuffer<T>(t * c.hidden_size, "activations");
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
    const T* no_bias = nullptr;
    cuda::embedding(embed_.data(), ids_.data(), residual_.data(), tt, hidden, static_cast<int>(c.vocab_size), stream_);
    cuda::rms_norm(residual_.data(), layers_[0].attn_norm.data(), h_.data(), tt, hidden, c.rms_norm_eps, stream_);
    for (size_t li = 0; li < layers_.size(); ++li) {
      Layer& L = layers_[li];
      cuda::linear(gemm_, h_.data(), L.wqkv.data(), no_bias, qkv_.data(), tt, qkv_rows, hidden, stream_);
      attend(li);
      cuda::linear(gemm_, attn_.data(), L.wo.data(), no_bias, delta_.data(), tt, hidden, static_cast<int>(c.q_size()), stream_);
      cuda::add_rms_norm(residual_.data(), delta_.data(), L.mlp_norm.data(), h_.data(), tt, hidden, c.rms_norm_eps, stream_);
      cuda::linear(gemm_, h_.data(), L.w_gate_up.data(), no_bias, gate_up_.data(), tt, 2 * inter, hidden, stream_);
      cuda::silu_mul_fused(gate_up_.data(), act_.data(), tt, inter, stream_);
      cuda::linear(gemm_, act_.data(), L.w_down.data(), no_bias, delta_.data(), tt, hidden, inter, stream_);
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
    const T* head = lm_head_tied_ ? embed_.data() : lm_head_.data();
    cuda::linear(gemm_, h_.data() + from * c.hidden_size, head, static_cast<const T*>(nullptr), logits_.data(),
                 static_cast<int>(t - from), static_cast<int>(c.vocab_size), static_cast<int>(c.hidden_size), stream_);
  }

  /// Prompt chunk of one sequence: tensor-core attention over its cache.
  void prefill(Cache& cache, const int32_t* ids, int64_t t, int64_t logits_from, float* dst) {
    const ModelConfig& c = host_.config;
    ensure_scratch(t);
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(ids_.data(), ids, t * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    const int64_t pos0 = cache.length();
    const int64_t qkv_rows = c.q_size() + 2 * c.kv_size();
    enqueue_layers(t, [&](size_t li) {
      cuda::RopeQkv<T> r = rope_params(li, t);
      r.k_cache = cache.keys(li);
      r.v_cache = cache.values(li);
      r.pos0 = static_cast<int>(pos0);
      r.cache_positions = static_cast<int>(cache.capacity());
      cuda::rope_qkv(r, stream_);
      // The prefill kernel wants q contiguous; it sits strided in the fused QKV rows.
      TURBINE_CUDA_CHECK(cudaMemcpy2DAsync(q_.data(), c.q_size() * sizeof(T), qkv_.data(), qkv_rows * sizeof(T),
                                           c.q_size() * sizeof(T), t, cudaMemcpyDeviceToDevice, stream_));
      cuda::attention_prefill(q_.data(), cache.keys(li), cache.values(li), attn_.data(), t, pos0, attention_shape(), stream_);
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
    const ModelConfig& c = host_.config;
    const size_t layers = layers_.size();
    enqueue_layers(b, [&](size_t li) {
      cuda::RopeQkv<T> r = rope_params(li, b);
      r.positions = step_dev_.data() + b;
      r.k_caches = tok_caches_.data() + li * max_batch_;
      r.v_caches = tok_caches_.data() + (layers + li) * max_batch_;
      r.cache_positions = static_cast<int>(c.max_position_embeddings);
      cuda::rope_qkv(r, stream_);
      // q of each sequence's single query sits at the start of its QKV row: stride qkv_rows.
      const int64_t qkv_rows = c.q_size() + 2 * c.kv_size();
      const T* q = qkv_.data();
      if (b > 1) {
        TURBINE_CUDA_CHECK(cudaMemcpy2DAsync(q_.data(), c.q_size() * sizeof(T), qkv_.data(), qkv_rows * sizeof(T),
                                             c.q_size() * sizeof(T), b, cudaMemcpyDeviceToDevice, stream_));
        q = q_.data();
      }
      (*decode_attn_)(q, reinterpret_cast<const T* const*>(tok_caches_.data() + li * max_batch_),
                      reinterpret_cast<const T* const*>(tok_caches_.data() + (layers + li) * max_batch_), 0,
                      step_dev_.data() + 2 * b, static_cast<int>(b), attn_.data(), stream_);
    });
    enqueue_lm_head(b, 0);
  }

  void ensure_decode_plan(int64_t b, int64_t max_len) {
    if (decode_attn_ && b <= max_batch_ && max_len <= decode_max_len_) return;
    max_batch_ = std::max<int64_t>({b, max_batch_, 1});
    decode_max_len_ = std::max(max_len, decode_max_len_);
    decode_attn_ = std::make_unique<cuda::DecodeAttention<T>>(attention_shape(), static_cast<int>(max_batch_), decode_max_len_);
    tok_caches_ = cuda::DeviceBuffer<T*>(static_cast<size_t>(2 * layers_.size() * max_batch_), "cache pointers");
    step_dev_ = cuda::DeviceBuffer<int>(static_cast<size_t>(3 * max_batch_), "decode step");
    bound_ptrs_.clear();
    drop_graphs();  // the graphs baked the old plan, workspace and arrays
  }

  /// Points the per-layer, per-sequence cache pointer arrays at these caches. Identity is the
  /// device addresses, not the Cache objects (a new cache can live where an old one did).
  void bind_caches(std::span<Cache* const> caches) {
    const size_t layers = layers_.size();
    std::vector<T*> ptrs(2 * layers * max_batch_, nullptr);  // [k|v][layer][sequence]
    for (size_t l = 0; l < layers; ++l)
      for (size_t i = 0; i < caches.size(); ++i) {
        ptrs[l * max_batch_ + i] = caches[i]->keys(l);
        ptrs[(layers + l) * max_batch_ + i] = caches[i]->values(l);
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
  std::vector<Layer> layers_;
  cuda::DeviceBuffer<float> inv_freq_;
  size_t weight_bytes_ = 0;
  int64_t scratch_tokens_ = 0;
  cuda::DeviceBuffer<int32_t> ids_;
  cuda::DeviceBuffer<float> residual_;
  cuda::DeviceBuffer<T> h_, delta_, qkv_, q_, attn_, gate_up_, act_, logits_;
  std::unique_ptr<cuda::DecodeAttention<T>> decode_attn_;
  int64_t max_batch_ = 0, decode_max_len_ = 0;
  cuda::DeviceBuffer<T*> tok_caches_;     // [k|v][layer][max_batch_] cache base pointers
  cuda::DeviceBuffer<int> step_dev_;      // ids | positions | lengths of the decode step
  std::vector<int> step_host_;
  std::vector<T*> bound_ptrs_;
  std::map<int64_t, cudaGraphExec_t> graphs_;
  bool use_graphs_ = std::getenv("TURBINE_NO_CUDA_GRAPH") == nullptr;
  std::vector<T> staged_logits_;
};

template <class S>
struct ModelTypeOf<S, std::enable_if_t<S::backend::is_gpu>> {
  using type = CudaTransformer<S>;
};

}  // namespace turbine
