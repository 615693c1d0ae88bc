#pragma once
// Builds ModelWeights from any tensor source (GGUF or safetensors) through the architecture's
// weight map, checking every tensor's presence, shape and type against the config.
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/ggml_quants.hpp"
#include "weight_map.hpp"
#include "weights.hpp"

namespace turbine {

/// Finds a tensor of the model's files by name (null if absent).
using TensorLookup = std::function<const RawTensor*(const std::string&)>;

namespace detail {

struct WeightAssembler {
  const ModelConfig& config;
  FileFormat format;
  const TensorLookup& lookup;
  std::string where;  // the model path, for errors
  ModelWeights& out;

  std::string name(WeightSlot s, int64_t layer = 0) const { return weight_name(config.arch, format, s, layer); }

  const RawTensor* find(WeightSlot s, int64_t layer = 0) const {
    const std::string n = name(s, layer);
    return n.empty() ? nullptr : lookup(n);
  }
  const RawTensor& require(WeightSlot s, int64_t layer = 0) const {
    const std::string n = name(s, layer);
    const RawTensor* t = n.empty() ? nullptr : lookup(n);
    if (!t) fail(where, ": tensor '", n, "' is missing (", architecture_name(config.arch), " models need it)");
    return *t;
  }
  static void expect_shape(const RawTensor& t, std::vector<int64_t> shape) {
    if (t.shape != shape) {
      RawTensor want;
      want.shape = shape;
      fail(t.file, ": tensor '", t.name, "' has shape ", t.shape_string(), " but the config implies ",
           want.shape_string());
    }
  }
  WeightMatrix matrix(const RawTensor& t, int64_t rows, int64_t cols) const {
    expect_shape(t, {rows, cols});
    const auto info = storage_info(t.type);
    check(cols % info.block_elems == 0, t.file, ": tensor '", t.name, "' rows of ", cols,
          " elements are not whole ", info.name, " blocks");
    check(t.nbytes >= row_bytes(t.type, cols) * static_cast<size_t>(rows), t.file, ": tensor '", t.name, "' is truncated");
    return WeightMatrix{t.type, rows, cols, t.data};
  }
  std::vector<float> vector(const RawTensor& t, int64_t n) const {
    expect_shape(t, {n});
    std::vector<float> v(static_cast<size_t>(n));
    io::dequantize_row(t.type, t.data, v.data(), n);
    return v;
  }
  /// Copies selected rows of `src` into an owned buffer: row r of the result is src row pick(r).
  WeightMatrix gather_rows(const WeightMatrix& src, int64_t rows, const std::function<int64_t(int64_t)>& pick) {
    const size_t stride = src.row_stride();
    auto buf = std::make_shared<std::vector<std::byte>>(stride * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) std::memcpy(buf->data() + r * stride, src.row(pick(r)), stride);
    out.keep_alive.push_back(buf);
    return WeightMatrix{src.type, rows, src.cols, buf->data()};
  }
  /// llama.cpp stores Llama q/k rows interleaved for its GPT-J style rope; undo it so that every
  /// backend uses one "rotate half" rope. Within a head, stored row 2i+h holds HF row h*hd/2+i.
  WeightMatrix unpermute_rope_rows(const WeightMatrix& m, int64_t heads) {
    const int64_t hd = m.rows / heads, half = hd / 2;
    return gather_rows(m, m.rows, [=](int64_t r) {
      const int64_t head = r / hd, within = r % hd;
      return head * hd + 2 * (within % half) + within / half;
    });
  }

  void run() {
    const ModelConfig& c = config;
    out.config = c;
    const RawTensor& embed = require(WeightSlot::Embed);
    out.embed = matrix(embed, c.vocab_size, c.hidden_size);
    out.final_norm = vector(require(WeightSlot::FinalNorm), c.hidden_size);
    if (const RawTensor* head = find(WeightSlot::LmHead)) {  // used even when the config says tied
      out.lm_head = matrix(*head, c.vocab_size, c.hidden_size);
    } else {
      check(c.tie_word_embeddings || format == FileFormat::Gguf, where, ": tensor '", name(WeightSlot::LmHead),
            "' is missing and the config does not tie word embeddings");
      out.lm_head = out.embed;
      out.config.tie_word_embeddings = true;
    }
    const bool permuted = format == FileFormat::Gguf && c.arch != Architecture::Qwen2;
    out.layers.resize(static_cast<size_t>(c.num_layers));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      LayerWeights& L = out.layers[i];
      L.attn_norm = vector(require(WeightSlot::AttnNorm, i), c.hidden_size);
      L.mlp_norm = vector(require(WeightSlot::MlpNorm, i), c.hidden_size);
      if (c.arch == Architecture::InternLM2 && format == FileFormat::HuggingFace) {
        split_wqkv(L, require(WeightSlot::Wqkv, i));
      } else {
        L.wq = matrix(require(WeightSlot::Wq, i), c.q_size(), c.hidden_size);
        L.wk = matrix(require(WeightSlot::Wk, i), c.kv_size(), c.hidden_size);
        L.wv = matrix(require(WeightSlot::Wv, i), c.kv_size(), c.hidden_size);
        if (permuted) {
          L.wq = unpermute_rope_rows(L.wq, c.num_heads);
          L.wk = unpermute_rope_rows(L.wk, c.num_kv_heads);
        }
      }
      if (c.attention_bias) {
        L.bq = vector(require(WeightSlot::Bq, i), c.q_size());
        L.bk = vector(require(WeightSlot::Bk, i), c.kv_size());
        L.bv = vector(require(WeightSlot::Bv, i), c.kv_size());
      }
      L.wo = matrix(require(WeightSlot::Wo, i), c.hidden_size, c.q_size());
      // Some Llama/InternLM2 configs put a bias on the output projection too; refuse rather than drop it.
      if (const std::string wo = name(WeightSlot::Wo, i); wo.size() > 7 && wo.ends_with(".weight")) {
        const std::string bias = wo.substr(0, wo.size() - 7) + ".bias";
        check(lookup(bias) == nullptr, where, ": tensor '", bias, "': a bias on the attention output projection is not supported");
      }
      L.w_gate = matrix(require(WeightSlot::Gate, i), c.intermediate_size, c.hidden_size);
      L.w_up = matrix(require(WeightSlot::Up, i), c.intermediate_size, c.hidden_size);
      L.w_down = matrix(require(WeightSlot::Down, i), c.hidden_size, c.intermediate_size);
    }
  }

  /// InternLM2's wqkv is grouped by KV head: for each KV head g, `group` query heads, then its
  /// key head, then its value head, each head_dim rows.
  void split_wqkv(LayerWeights& L, const RawTensor& t) {
    const ModelConfig& c = config;
    const int64_t group = c.num_heads / c.num_kv_heads, hd = c.head_dim;
    const WeightMatrix all = matrix(t, c.q_size() + 2 * c.kv_size(), c.hidden_size);
    const int64_t per_group = (group + 2) * hd;
    L.wq = gather_rows(all, c.q_size(), [=](int64_t r) {
      const int64_t head = r / hd;
      return (head / group) * per_group + (head % group) * hd + r % hd;
    });
    L.wk = gather_rows(all, c.kv_size(), [=](int64_t r) { return (r / hd) * per_group + group * hd + r % hd; });
    L.wv = gather_rows(all, c.kv_size(), [=](int64_t r) { return (r / hd) * per_group + (group + 1) * hd + r % hd; });
  }
};

}  // namespace detail

/// Looks up and validates every weight of `config`'s architecture from `lookup`.
inline ModelWeights assemble_weights(const ModelConfig& config, FileFormat format, const TensorLookup& lookup,
                                     const std::string& where) {
  ModelWeights w;
  detail::WeightAssembler{config, format, lookup, where, w}.run();
  return w;
}

}  // namespace turbine
