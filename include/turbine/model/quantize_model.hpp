#pragma once
// quantize_model(): a model's seven Linears per layer to group-wise 4-bit weights, by
// round-to-nearest or by AWQ (quant/awq_search.hpp) with calibration text run through the fp32
// model on the CPU, one layer at a time as AutoAWQ does:
//   1. run every calibration sequence through layer l of the unquantized model, keeping the inputs
//      of its Linears (the normed input of q/k/v, the attention output, the normed input of
//      gate/up, silu(gate) * up) and the layer's output (the next layer's input);
//   2. search the scales of four groups on the original weights: q/k/v (folded into the input
//      RMSNorm's gamma), o (into v's rows; only without grouped-query attention, where the two
//      have the same width, as AutoAWQ), gate/up (into the MLP RMSNorm), down (into up's rows);
//      then apply them all (the fp32 model computes the same function);
//   3. search the clipping ranges of v, o, gate, up and down on the scaled inputs;
//   4. round every Linear to 4 bits with fp16 scales.
// The embedding, the LM head, norms and biases stay in floating point. The searches' candidate
// errors and the Linears of step 1 run on a search backend's device (quant::CpuAwqSearch, or
// cuda::AwqSearch on a GPU: `turbine quantize --device cuda`); the rest runs on the CPU.
#include <algorithm>
#include <chrono>
#include <concepts>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "../backend/cpu/cpu.hpp"
#include "../io/ggml_quants.hpp"
#include "../layers/rotary.hpp"
#include "../quant/awq_search.hpp"
#include "../quant/error_feedback.hpp"
#include "../quant/group_refine.hpp"
#include "../quant/int4_groups.hpp"
#include "weights.hpp"

namespace turbine {

/// How quantize_model picks the 4-bit weights.
enum class QuantMethod { Awq, Rtn };

/// Options of quantize_model (the flags of `turbine quantize`).
struct QuantizeOptions {
  QuantMethod method = QuantMethod::Awq;  ///< AWQ search or plain round-to-nearest
  int64_t group = 128;                    ///< input elements per scale and zero point (32, 64, 128)
  bool clip = true;                       ///< AWQ: also search clipping ranges
  /// AWQ: round each group with the (scale, zero point) of the smallest output error on the
  /// calibration inputs instead of plain round-to-nearest (quant/group_refine.hpp)
  bool refine = true;
  /// AWQ: then choose the codes on that grid with error feedback (GPTQ's column-by-column
  /// rounding, quant/error_feedback.hpp) instead of rounding each weight to its nearest level
  bool feedback = false;
  /// AWQ: the calibration text reaches each layer through the layers already quantized (GPTQ's
  /// order), so each layer's searches see, and can make up for, the error before it; off: through
  /// the float layers (AutoAWQ's order). Costs a second forward per layer.
  bool sequential = false;
  /// AWQ: the output error of the scale and clip searches, the refinement and feedback counts each
  /// calibration token relative to the RMS of the residual stream its error lands in (what the
  /// next RMSNorm divides it by), so the few tokens with huge activations do not outweigh the rest
  bool norm_weighted = true;
  /// AWQ: the gate/up scale search measures the error at the MLP's output (down(silu(gate) * up),
  /// down in float, as AutoAWQ), not at gate's and up's own outputs
  bool mlp_loss = true;
  /// AWQ with clipping: the refinement and feedback measure each row's error against its weights
  /// before the clip (the clipped grid is their starting point), not against the clipped copy
  bool refine_unclipped = true;
  int grid = 20;                          ///< candidates per search
  int64_t loss_tokens = 2048;             ///< calibration tokens the scale search measures on
  int64_t clip_tokens = 512;              ///< calibration tokens the clip search measures on
  int64_t refine_tokens = 16384;          ///< calibration tokens the refinement's Gram matrices sum over
  /// Called when a layer is done: (layers done, layers in all).
  std::function<void(int64_t, int64_t)> on_layer;
};

/// What the searches found in one layer (AWQ only).
struct LayerQuantReport {
  float ratio[4] = {0, 0, 0, 0};  ///< winning exponent of q/k/v, o (-1: not scaled), gate/up, down
  double loss_rtn = 0;  ///< sum over the four groups of the mean squared output error, round-to-nearest
  double loss_awq = 0;  ///< the same with the scales found
  /// refine: the layer's output error of the rounding (e^T G e summed over its Linears' rows) with
  /// round-to-nearest and after the refinement, and how many groups ended with other parameters
  ///@{
  double round_error_rtn = 0, round_error = 0;
  int64_t groups_changed = 0, groups = 0;
  ///@}
  /// feedback: the output error after it (round_error is the error before) and the rows that kept
  /// their nearest-level codes because feedback did not lower their error
  ///@{
  double feedback_error = 0;
  int64_t feedback_rows_kept = 0, rows = 0;
  ///@}
};

/// A model with 4-bit Linears, ready for save_awq_model().
struct QuantizedModel {
  /// One layer: float norms and biases, 4-bit Linears (AutoAWQ indexing, see Int4Groups).
  struct Layer {
    /// norms (with the AWQ scales folded in) and q/k/v biases (empty without)
    ///@{
    std::vector<float> attn_norm, mlp_norm, bq, bk, bv;
    ///@}
    /// the seven Linears
    ///@{
    quant::Int4Groups wq, wk, wv, wo, gate, up, down;
    ///@}
  };
  ModelWeights source;            ///< the input model: the embedding and LM head are written from it
  ModelConfig config;             ///< the source's, with awq_group_size set
  std::vector<float> final_norm;  ///< [hidden]
  std::vector<Layer> layers;      ///< [num_layers]
  std::vector<LayerQuantReport> report;  ///< [num_layers] for AWQ, empty for RTN
  double seconds_forward = 0;  ///< AWQ: time spent running the calibration text through the layers
  double seconds_search = 0;   ///< AWQ: time spent in the scale and clip searches
};

namespace detail {

inline quant::FloatRows to_float_rows(const WeightMatrix& m) {
  quant::FloatRows r(m.rows, m.cols);
  io::dequantize_matrix(m, r.data());
  return r;
}

inline WeightMatrix view_of(const quant::FloatRows& m) {
  return WeightMatrix{StorageType::F32, m.rows(), m.cols(), reinterpret_cast<const std::byte*>(m.data())};
}

/// The seven Linears of a layer in fp32, and the inputs the calibration gave them.
struct FloatLayer {
  quant::FloatRows wq, wk, wv, wo, gate, up, down;
  std::vector<float> attn_norm, mlp_norm, bq, bk, bv;
};

struct LayerInputs {
  quant::FloatRows attn, o, mlp, down;  // [all calibration tokens, in] each
  // Per token, 1 / RMS of the residual stream after the attention's and after the MLP's addition
  // (what the next RMSNorm divides an output error landing there by), scaled to a mean square of 1.
  std::vector<float> weight_mid, weight_end;
};

/// Per row of x [tokens, hidden], 1 / sqrt(mean(x^2) + eps), all scaled so their mean square is 1.
inline std::vector<float> residual_token_weights(const quant::FloatRows& x, float eps) {
  std::vector<float> r(static_cast<size_t>(x.rows()));
  double mean_sq = 0;
  for (int64_t t = 0; t < x.rows(); ++t) {
    const float v = 1.0f / std::sqrt(x.row(t).squaredNorm() / static_cast<float>(x.cols()) + eps);
    r[static_cast<size_t>(t)] = v;
    mean_sq += double(v) * v;
  }
  mean_sq /= static_cast<double>(std::max<size_t>(1, r.size()));
  for (float& v : r) v = static_cast<float>(v / std::sqrt(mean_sq));
  return r;
}

/// The residual stream of the calibration sequences, one after another.
struct Calibration {
  quant::FloatRows x;          // [all calibration tokens, hidden]
  std::vector<int64_t> lens;  // tokens of each sequence
};

/// y [tokens, out] = x [tokens, in] w [out, in]^T (+ bias) on the CPU.
inline quant::FloatRows cpu_linear(const quant::FloatRows& x, const quant::FloatRows& w, const std::vector<float>& bias) {
  quant::FloatRows y(x.rows(), w.rows());
  cpu::linear(view_of(w), x.data(), x.rows(), y.data(), bias.empty() ? nullptr : bias.data());
  return y;
}

/// Runs the calibration sequences through layer `L` in place, keeping the inputs of its Linears.
/// The Linears see every token of every sequence at once (one product each, the expensive part:
/// `linear` may run it on a GPU); rotary embedding and attention go sequence by sequence.
template <class Linear>
LayerInputs run_layer(const ModelConfig& c, const FloatLayer& L, Calibration& cal, Linear&& linear) {
  const int64_t total = cal.x.rows();
  quant::FloatRows& x = cal.x;
  LayerInputs in;
  in.attn.resize(total, c.hidden_size);
  in.o.resize(total, c.q_size());
  in.mlp.resize(total, c.hidden_size);
  cpu::rms_norm(x.data(), L.attn_norm.data(), total, c.hidden_size, c.rms_norm_eps, in.attn.data());
  quant::FloatRows q = linear(in.attn, L.wq, L.bq), k = linear(in.attn, L.wk, L.bk), v = linear(in.attn, L.wv, L.bv);
  int64_t row = 0;
  for (const int64_t t : cal.lens) {
    const auto inv_freq = rope_inv_freq(c, t);
    float* qs = q.data() + row * c.q_size();
    float* ks = k.data() + row * c.kv_size();
    cpu::apply_rope(qs, t, c.num_heads, c.head_dim, 0, inv_freq);
    cpu::apply_rope(ks, t, c.num_kv_heads, c.head_dim, 0, inv_freq);
    cpu::attention(qs, ks, v.data() + row * c.kv_size(), t, 0,
                   {c.num_heads, c.num_kv_heads, c.head_dim, c.sliding_window}, in.o.data() + row * c.q_size());
    row += t;
  }
  q = quant::FloatRows();
  k = quant::FloatRows();
  v = quant::FloatRows();
  const std::vector<float> no_bias;
  x += linear(in.o, L.wo, no_bias);
  in.weight_mid = residual_token_weights(x, c.rms_norm_eps);
  cpu::rms_norm(x.data(), L.mlp_norm.data(), total, c.hidden_size, c.rms_norm_eps, in.mlp.data());
  in.down = linear(in.mlp, L.gate, no_bias);
  {
    const quant::FloatRows u = linear(in.mlp, L.up, no_bias);
    cpu::silu_mul(in.down.data(), u.data(), total * c.intermediate_size, in.down.data());
  }
  x += linear(in.down, L.down, no_bias);
  in.weight_end = residual_token_weights(x, c.rms_norm_eps);
  return in;
}

/// Multiplies the columns of each weight by s and divides the producer of their input by s.
inline void scale_columns(quant::FloatRows& w, const std::vector<float>& s) {
  w *= Eigen::Map<const Eigen::VectorXf>(s.data(), static_cast<Eigen::Index>(s.size())).asDiagonal();
}
inline void divide_rows(quant::FloatRows& w, std::vector<float>& bias, const std::vector<float>& s) {
  for (int64_t r = 0; r < w.rows(); ++r) {
    w.row(r) /= s[static_cast<size_t>(r)];
    if (!bias.empty()) bias[static_cast<size_t>(r)] /= s[static_cast<size_t>(r)];
  }
}
inline void divide(std::vector<float>& v, const std::vector<float>& s) {
  for (size_t i = 0; i < v.size(); ++i) v[i] /= s[i];
}
inline void divide_columns(quant::FloatRows& x, const std::vector<float>& s) {
  x *= Eigen::Map<const Eigen::VectorXf>(s.data(), static_cast<Eigen::Index>(s.size())).cwiseInverse().asDiagonal();
}

}  // namespace detail

/// Quantizes every Linear of `w` to 4 bits. `calibration`: token sequences (AWQ only; RTN
/// ignores them). `search` computes the searches' candidate errors (quant::CpuAwqSearch, or
/// cuda::AwqSearch from backend/cuda/awq_search.cuh on a GPU).
template <quant::AwqSearchBackend Search>
QuantizedModel quantize_model(const ModelWeights& w, const std::vector<std::vector<int32_t>>& calibration,
                              const QuantizeOptions& opt, Search& search) {
  const ModelConfig& c = w.config;
  check(opt.group == 32 || opt.group == 64 || opt.group == 128, "quantize: group size ", opt.group,
        " is not supported (supported: 32, 64, 128)");
  for (int64_t in : {c.hidden_size, c.q_size(), c.intermediate_size})
    check(in % opt.group == 0, "quantize: the model's input width ", in, " is not a multiple of the group size ",
          opt.group, " (try --group-size 64 or 32)");
  for (int64_t out : {c.hidden_size, c.q_size(), c.kv_size(), c.intermediate_size})
    check(out % 8 == 0, "quantize: output width ", out, " is not a multiple of 8 (AutoAWQ packs 8 columns per word)");
  constexpr float kMaxShrink = 0.5f;  // clipping keeps at least half of each group's range, as AutoAWQ
  const bool awq = opt.method == QuantMethod::Awq;
  check(!awq || !calibration.empty(), "quantize: AWQ needs calibration text (--calib FILE)");
  QuantizedModel q;
  q.source = w;
  q.config = c;
  q.config.awq_group_size = opt.group;
  q.final_norm = w.final_norm;
  q.layers.resize(static_cast<size_t>(c.num_layers));

  detail::Calibration cal;
  if (awq) {
    std::vector<int32_t> ids;
    for (const auto& seq : calibration) {
      check(!seq.empty(), "quantize: an empty calibration sequence");
      ids.insert(ids.end(), seq.begin(), seq.end());
      cal.lens.push_back(static_cast<int64_t>(seq.size()));
    }
    cal.x.resize(static_cast<int64_t>(ids.size()), c.hidden_size);
    cpu::embedding(w.embed, ids.data(), static_cast<int64_t>(ids.size()), cal.x.data());
  }
  // The calibration forward's Linears on the search backend's device if it has them.
  auto linear = [&](const quant::FloatRows& x, const quant::FloatRows& m, const std::vector<float>& bias) {
    if constexpr (requires { { search.linear(x, m, bias) } -> std::same_as<quant::FloatRows>; })
      return search.linear(x, m, bias);
    else
      return detail::cpu_linear(x, m, bias);
  };
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  auto round = [&](const quant::FloatRows& m) {
    return quant::rtn_quantize_int4(m.data(), m.rows(), m.cols(), opt.group, quant::round_scale_fp16);
  };
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& src = w.layers[static_cast<size_t>(l)];
    detail::FloatLayer L{detail::to_float_rows(src.wq), detail::to_float_rows(src.wk), detail::to_float_rows(src.wv),
                         detail::to_float_rows(src.wo), detail::to_float_rows(src.w_gate), detail::to_float_rows(src.w_up),
                         detail::to_float_rows(src.w_down), src.attn_norm, src.mlp_norm, src.bq, src.bk, src.bv};
    std::vector<double> gram[4];  // refine, feedback: the inputs of q/k/v, o, gate/up, down (after the scales)
    // refine_unclipped: each clipped matrix (v, o, gate, up, down) as it was before the clip search
    // clamped it, found by the address of its clipped copy in L
    std::map<const quant::FloatRows*, quant::FloatRows> unclipped;
    LayerQuantReport rep;
    quant::FloatRows x_before;  // sequential: the layer's input, to run it again once quantized
    if (awq) {
      auto t0 = Clock::now();
      if (opt.sequential && l + 1 < c.num_layers) x_before = cal.x;
      detail::LayerInputs in = detail::run_layer(c, L, cal, linear);
      q.seconds_forward += since(t0);
      t0 = Clock::now();
      // norm_weighted: each token's error counts as the next RMSNorm will see it, relative to its
      // residual's RMS (q/k/v and o land after the attention, gate/up and down after the MLP)
      std::vector<float> token_weight[2];  // after the attention, after the MLP; empty: unweighted
      if (opt.norm_weighted) {
        token_weight[0] = std::move(in.weight_mid);
        token_weight[1] = std::move(in.weight_end);
      }
      const std::vector<float>* weight_of_slot[4] = {&token_weight[0], &token_weight[0], &token_weight[1], &token_weight[1]};
      auto find_scales = [&](const quant::FloatRows& x, std::vector<const quant::FloatRows*> ws, int slot) {
        auto r = quant::search_awq_scales(x, ws, opt.group, opt.grid, opt.loss_tokens, search, *weight_of_slot[slot],
                                          slot == 2 && opt.mlp_loss ? &L.down : nullptr);
        rep.ratio[slot] = r.ratio;
        rep.loss_rtn += r.loss_rtn;
        rep.loss_awq += r.loss;
        return r.scales;
      };
      const auto s_qkv = find_scales(in.attn, {&L.wq, &L.wk, &L.wv}, 0);
      const bool scale_o = c.q_size() == c.kv_size();  // v's rows feed o's columns one to one
      std::vector<float> s_o;
      if (scale_o) s_o = find_scales(in.o, {&L.wo}, 1);
      else rep.ratio[1] = -1;
      const auto s_mlp = find_scales(in.mlp, {&L.gate, &L.up}, 2);
      const auto s_down = find_scales(in.down, {&L.down}, 3);
      for (auto* m : {&L.wq, &L.wk, &L.wv}) detail::scale_columns(*m, s_qkv);
      detail::divide(L.attn_norm, s_qkv);
      detail::divide_columns(in.attn, s_qkv);
      if (scale_o) {
        detail::scale_columns(L.wo, s_o);
        detail::divide_rows(L.wv, L.bv, s_o);
        detail::divide_columns(in.o, s_o);
      }
      for (auto* m : {&L.gate, &L.up}) detail::scale_columns(*m, s_mlp);
      detail::divide(L.mlp_norm, s_mlp);
      detail::divide_columns(in.mlp, s_mlp);
      detail::scale_columns(L.down, s_down);
      std::vector<float> no_bias;
      detail::divide_rows(L.up, no_bias, s_down);
      detail::divide_columns(in.down, s_down);
      if (opt.clip) {  // not q and k: their errors are amplified by the attention scores
        const quant::FloatRows attn_s = quant::sample_rows(in.attn, opt.clip_tokens, token_weight[0]);
        const quant::FloatRows mlp_s = quant::sample_rows(in.mlp, opt.clip_tokens, token_weight[1]);
        auto clip = [&](quant::FloatRows& m, const quant::FloatRows& x) {
          if ((opt.refine || opt.feedback) && opt.refine_unclipped) unclipped[&m] = m;
          quant::search_awq_clip(m, x, opt.group, opt.grid, kMaxShrink, search);
        };
        clip(L.wv, attn_s);
        clip(L.wo, quant::sample_rows(in.o, opt.clip_tokens, token_weight[0]));
        clip(L.gate, mlp_s);
        clip(L.up, mlp_s);
        clip(L.down, quant::sample_rows(in.down, opt.clip_tokens, token_weight[1]));
      }
      if (opt.refine || opt.feedback) {
        const quant::FloatRows* inputs[4] = {&in.attn, &in.o, &in.mlp, &in.down};
        for (int slot = 0; slot < 4; ++slot)
          gram[slot] = quant::input_gram(quant::sample_rows(*inputs[slot], opt.refine_tokens, *weight_of_slot[slot]));
      }
      q.seconds_search += since(t0);
    }
    quant::RefineReport refined;
    quant::FeedbackReport fed;
    quant::FeedbackBasis basis;  // feedback: of the slot being rounded (one at a time: for an 8B, 1.6 GB)
    int basis_slot = -1;
    auto round_refined = [&](const quant::FloatRows& m, int slot) {
      if (gram[slot].empty()) return round(m);
      const auto found = unclipped.find(&m);
      const quant::FloatRows* target = found != unclipped.end() ? &found->second : nullptr;
      quant::Int4Groups r = opt.refine ? quant::round_int4_refined(m, opt.group, gram[slot], &refined, default_pool(), target)
                                       : round(m);
      if (opt.feedback) {
        if (basis_slot != slot) {
          basis = quant::FeedbackBasis();
          basis = quant::feedback_basis(gram[slot], m.cols());
          basis_slot = slot;
        }
        quant::round_int4_feedback(target ? *target : m, gram[slot], basis, r, &fed);  // the same target as the refinement
      }
      return r;
    };
    QuantizedModel::Layer& out = q.layers[static_cast<size_t>(l)];
    out.attn_norm = std::move(L.attn_norm);
    out.mlp_norm = std::move(L.mlp_norm);
    out.bq = std::move(L.bq);
    out.bk = std::move(L.bk);
    out.bv = std::move(L.bv);
    const auto t_round = Clock::now();
    out.wq = round_refined(L.wq, 0);
    out.wk = round_refined(L.wk, 0);
    out.wv = round_refined(L.wv, 0);
    out.wo = round_refined(L.wo, 1);
    out.gate = round_refined(L.gate, 2);
    out.up = round_refined(L.up, 2);
    out.down = round_refined(L.down, 3);
    if (awq) {
      q.seconds_search += since(t_round);
      if (opt.sequential && l + 1 < c.num_layers) {  // (nothing reads the last layer's output)
        const auto t0 = Clock::now();
        cal.x = std::move(x_before);
        auto deq = [](const quant::Int4Groups& g) {
          const std::vector<float> v = g.dequantize();
          return quant::FloatRows(Eigen::Map<const quant::FloatRows>(v.data(), g.out, g.in));
        };
        const detail::FloatLayer Lq{deq(out.wq), deq(out.wk), deq(out.wv), deq(out.wo), deq(out.gate), deq(out.up),
                                    deq(out.down), out.attn_norm, out.mlp_norm, out.bq, out.bk, out.bv};
        detail::run_layer(c, Lq, cal, linear);
        q.seconds_forward += since(t0);
      }
      // with feedback, the error before it as feedback measured it (the same sum, in one order)
      rep.round_error_rtn = opt.refine ? refined.error_rtn : fed.error_before;
      rep.round_error = opt.feedback ? fed.error_before : refined.error;
      rep.groups_changed = refined.changed;
      rep.groups = refined.groups;
      rep.feedback_error = opt.feedback ? fed.error : refined.error;
      rep.feedback_rows_kept = fed.rows_kept;
      rep.rows = fed.rows;
      q.report.push_back(rep);
    }
    if (opt.on_layer) opt.on_layer(l + 1, c.num_layers);
  }
  return q;
}

/// quantize_model with the searches on the CPU.
inline QuantizedModel quantize_model(const ModelWeights& w, const std::vector<std::vector<int32_t>>& calibration,
                                     const QuantizeOptions& opt) {
  quant::CpuAwqSearch cpu;
  return quantize_model(w, calibration, opt, cpu);
}

/// Calibration sequences from token ids: the text cut into `samples` windows of `seqlen` tokens
/// spread evenly over it (fewer if the text is short; a shorter last one if it is very short).
inline std::vector<std::vector<int32_t>> calibration_windows(std::span<const int32_t> ids, int64_t samples,
                                                              int64_t seqlen) {
  check(samples > 0 && seqlen > 0, "calibration: --calib-samples and --calib-seqlen must be positive");
  std::vector<std::vector<int32_t>> out;
  const int64_t n = static_cast<int64_t>(ids.size());
  check(n >= 16, "calibration text has only ", n, " tokens (give at least a few paragraphs)");
  const int64_t windows = std::max<int64_t>(1, std::min(samples, n / seqlen));
  const int64_t len = std::min(seqlen, n);
  for (int64_t i = 0; i < windows; ++i) {
    const int64_t start = windows == 1 ? 0 : i * (n - len) / (windows - 1);
    out.emplace_back(ids.begin() + start, ids.begin() + start + len);
  }
  return out;
}

}  // namespace turbine
