#pragma once
// One weight map per architecture and file format: canonical slot -> tensor name.
#include <string>

#include "config.hpp"

namespace turbine {

/// The canonical weight slots of a decoder, whatever the file calls them.
enum class WeightSlot { Embed, FinalNorm, LmHead, AttnNorm, Wq, Wk, Wv, Wqkv, Bq, Bk, Bv, Wo, MlpNorm, Gate, Up, Down };

/// The naming convention of a model file: llama.cpp's (GGUF) or Hugging Face's (safetensors).
enum class FileFormat { Gguf, HuggingFace };

/// The tensor name of `slot` (of layer `layer` for per-layer slots). Empty if the architecture
/// has no such tensor in that format (e.g. Wqkv outside InternLM2).
inline std::string weight_name(Architecture arch, FileFormat fmt, WeightSlot slot, int64_t layer = 0) {
  const std::string l = std::to_string(layer);
  if (fmt == FileFormat::Gguf) {  // llama.cpp names, the same for every architecture
    const std::string b = "blk." + l + ".";
    switch (slot) {
      case WeightSlot::Embed: return "token_embd.weight";
      case WeightSlot::FinalNorm: return "output_norm.weight";
      case WeightSlot::LmHead: return "output.weight";
      case WeightSlot::AttnNorm: return b + "attn_norm.weight";
      case WeightSlot::Wq: return b + "attn_q.weight";
      case WeightSlot::Wk: return b + "attn_k.weight";
      case WeightSlot::Wv: return b + "attn_v.weight";
      case WeightSlot::Wqkv: return b + "attn_qkv.weight";
      case WeightSlot::Bq: return b + "attn_q.bias";
      case WeightSlot::Bk: return b + "attn_k.bias";
      case WeightSlot::Bv: return b + "attn_v.bias";
      case WeightSlot::Wo: return b + "attn_output.weight";
      case WeightSlot::MlpNorm: return b + "ffn_norm.weight";
      case WeightSlot::Gate: return b + "ffn_gate.weight";
      case WeightSlot::Up: return b + "ffn_up.weight";
      case WeightSlot::Down: return b + "ffn_down.weight";
    }
  }
  if (arch == Architecture::InternLM2) {
    const std::string b = "model.layers." + l + ".";
    switch (slot) {
      case WeightSlot::Embed: return "model.tok_embeddings.weight";
      case WeightSlot::FinalNorm: return "model.norm.weight";
      case WeightSlot::LmHead: return "output.weight";
      case WeightSlot::AttnNorm: return b + "attention_norm.weight";
      case WeightSlot::Wqkv: return b + "attention.wqkv.weight";
      case WeightSlot::Wo: return b + "attention.wo.weight";
      case WeightSlot::MlpNorm: return b + "ffn_norm.weight";
      case WeightSlot::Gate: return b + "feed_forward.w1.weight";
      case WeightSlot::Up: return b + "feed_forward.w3.weight";
      case WeightSlot::Down: return b + "feed_forward.w2.weight";
      default: return "";
    }
  }
  const std::string b = "model.layers." + l + ".";
  switch (slot) {
    case WeightSlot::Embed: return "model.embed_tokens.weight";
    case WeightSlot::FinalNorm: return "model.norm.weight";
    case WeightSlot::LmHead: return "lm_head.weight";
    case WeightSlot::AttnNorm: return b + "input_layernorm.weight";
    case WeightSlot::Wq: return b + "self_attn.q_proj.weight";
    case WeightSlot::Wk: return b + "self_attn.k_proj.weight";
    case WeightSlot::Wv: return b + "self_attn.v_proj.weight";
    case WeightSlot::Wqkv: return "";
    case WeightSlot::Bq: return b + "self_attn.q_proj.bias";
    case WeightSlot::Bk: return b + "self_attn.k_proj.bias";
    case WeightSlot::Bv: return b + "self_attn.v_proj.bias";
    case WeightSlot::Wo: return b + "self_attn.o_proj.weight";
    case WeightSlot::MlpNorm: return b + "post_attention_layernorm.weight";
    case WeightSlot::Gate: return b + "mlp.gate_proj.weight";
    case WeightSlot::Up: return b + "mlp.up_proj.weight";
    case WeightSlot::Down: return b + "mlp.down_proj.weight";
  }
  return "";
}

}  // namespace turbine
