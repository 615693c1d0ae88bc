#pragma once
// Pipeline<Model>: the library user's entry point. Load once; generate for many prompts (each
// formatted with the model's chat template as one user turn), streamed or not; chat sessions
// that keep their history and KV cache between turns.
#include <memory>
#include <string>
#include <vector>

#include "../model/load_model.hpp"
#include "../model/tensor_parallel.hpp"
#include "../model/weight_scheme.hpp"
#include "../tokenizer/chat_template.hpp"
#include "generate.hpp"

namespace turbine {

/// Options of a Pipeline.
struct PipelineOptions {
  std::string chat_template;  ///< built-in template name; empty: detect from the model
  int64_t ctx_size = 0;       ///< tokens of context to allocate; 0: the model's maximum
  /// Tensor-parallel degree: the model split this many ways by heads, MLP columns and vocabulary
  /// (for `Pipeline<TensorParallel<Spec>>`; other model types take only 1).
  int tp = 1;
  /// Round the LM head to 4 bits at load (quantize_lm_head_int4, the largest group of 128, 64, 32
  /// that divides the hidden size): a 4-bit CUDA model then streams a quarter of its bytes; the
  /// accuracy cost is in docs/QUANTIZATION.md. Off: the head as stored.
  bool lm_head_int4 = false;
};

/// `w`, with the LM head rounded to 4 bits where `opts` asks for it.
inline ModelWeights weights_for(const ModelWeights& w, const PipelineOptions& opts) {
  if (!opts.lm_head_int4) return w;
  return quantize_lm_head_int4(w, lm_head_group(w.config.hidden_size));
}

/// The library user's entry point: a loaded model, its tokenizer and chat template, and the KV
/// cache of one sequence. `Model` is a model type (`Llama<...>`, a `Decoder<...>`, an
/// `ExternModel<...>`). Calls run one at a time: use one Pipeline per thread, or serialize.
template <class Model>
class Pipeline {
 public:
  /// Loads `model_path` (a `.gguf` file or a Hugging Face directory) and builds the model.
  explicit Pipeline(const std::string& model_path, PipelineOptions opts = {})
      : Pipeline(load_model(model_path), std::move(opts)) {}

  /// Builds the model from files already loaded.
  Pipeline(LoadedModel loaded, PipelineOptions opts)
      : files_(std::move(loaded)), opts_(std::move(opts)), model_(make_model<Model>(weights_for(files_.weights, opts_), opts_.tp)) {
    template_ = opts_.chat_template.empty() ? detect_chat_template(files_.chat_template_source) : opts_.chat_template;
    render_chat(template_, {}, true);  // fails early, listing the names, if the name is unknown
    eos_ = files_.eos_ids;
    for (const auto& s : chat_stop_strings(template_)) {
      const int32_t id = files_.tokenizer->token_id(s);
      if (id >= 0) eos_.push_back(id);
    }
  }

  const ModelConfig& config() const { return files_.config; }         ///< the model's sizes and options
  const Tokenizer& tokenizer() const { return *files_.tokenizer; }    ///< the model's tokenizer
  const LoadedModel& model_files() const { return files_; }          ///< what was loaded
  const std::string& chat_template() const { return template_; }     ///< the template's name in use
  const std::vector<int32_t>& eos_ids() const { return eos_; }       ///< tokens that end a reply
  Model& model() { return *model_; }                                  ///< the model itself
  /// Tokens a sequence may hold: PipelineOptions::ctx_size, at most the model's context.
  int64_t context_size() const {
    const int64_t max = files_.config.max_position_embeddings;
    return opts_.ctx_size > 0 ? std::min(opts_.ctx_size, max) : max;
  }

  /// One response per prompt; each prompt is a single user turn. `on_text(i, piece)` streams.
  std::vector<Response> generate(const std::vector<std::string>& prompts, const GenerationConfig& cfg = {},
                                 const std::function<bool(size_t, std::string_view)>& on_text = {}) {
    std::vector<Response> out;
    out.reserve(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<ChatMessage> msgs{{"user", prompts[i]}};
      StreamCallback cb;
      if (on_text) cb = [&, i](std::string_view p) { return on_text(i, p); };
      out.push_back(chat(msgs, cfg, cb));
    }
    return out;
  }

  /// Generates the assistant's reply to a conversation.
  Response chat(const std::vector<ChatMessage>& messages, const GenerationConfig& cfg = {}, const StreamCallback& on_text = {}) {
    return complete_tokens(encode_chat(messages), cfg, on_text);
  }

  /// Continues raw text (no chat template).
  Response complete(const std::string& text, const GenerationConfig& cfg = {}, const StreamCallback& on_text = {}) {
    return complete_tokens(files_.tokenizer->encode(text), cfg, on_text);
  }

  /// Continues a token sequence. The KV cache of the previous call is reused for the common prefix.
  Response complete_tokens(const std::vector<int32_t>& ids, const GenerationConfig& cfg = {},
                           const StreamCallback& on_text = {}) {
    if (!cache_) cache_ = std::make_unique<typename Model::Cache>(model_->new_cache(context_size()));
    return generate_sequence(*model_, *cache_, cached_, ids, *files_.tokenizer, cfg, eos_, on_text);
  }

  /// The token ids of `messages` rendered by the chat template, with the assistant's turn opened.
  std::vector<int32_t> encode_chat(const std::vector<ChatMessage>& messages) const {
    return files_.tokenizer->encode(render_chat(template_, messages, true), true);
  }

 private:
  LoadedModel files_;
  PipelineOptions opts_;
  std::unique_ptr<Model> model_;
  std::string template_;
  std::vector<int32_t> eos_;
  std::unique_ptr<typename Model::Cache> cache_;
  std::vector<int32_t> cached_;
};

/// A multi-turn conversation over a Pipeline: keeps the messages; the pipeline's cache keeps the
/// conversation's tokens, so each turn computes only what is new.
template <class Model>
class ChatSession {
 public:
  /// A conversation on `pipe` (which must outlive it), opened by `system_prompt` if not empty.
  explicit ChatSession(Pipeline<Model>& pipe, std::string system_prompt = {}) : pipe_(pipe), system_(std::move(system_prompt)) {
    reset();
  }
  /// Adds the user's turn, generates the assistant's reply (streamed to `on_text`), and keeps both.
  Response say(const std::string& user_text, const GenerationConfig& cfg = {}, const StreamCallback& on_text = {}) {
    messages_.push_back({"user", user_text});
    Response r = pipe_.chat(messages_, cfg, on_text);
    messages_.push_back({"assistant", r.text});
    return r;
  }
  /// Forgets the conversation, keeping the system prompt.
  void reset() {
    messages_.clear();
    if (!system_.empty()) messages_.push_back({"system", system_});
  }
  const std::vector<ChatMessage>& messages() const { return messages_; }  ///< the conversation so far

 private:
  Pipeline<Model>& pipe_;
  std::string system_;
  std::vector<ChatMessage> messages_;
};

}  // namespace turbine
