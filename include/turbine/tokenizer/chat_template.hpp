#pragma once
// Built-in chat templates. Models ship Jinja templates; instead of a Jinja interpreter we
// recognize the template (detect_chat_template) and render it in C++, byte for byte what
// transformers' apply_chat_template produces for that model (checked in tests/tokenizer).
//
//   std::vector<turbine::ChatMessage> msgs = {{"user", "hi"}};
//   std::string prompt = turbine::render_chat("smollm", msgs, /*add_generation_prompt=*/true);
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "tokenizer.hpp"

namespace turbine {

/// One turn of a conversation.
struct ChatMessage {
  std::string role;     ///< "system", "user", "assistant" (ChatML templates accept any role)
  std::string content;  ///< the turn's text
};

/// SmolLM2's template adds this system message when the conversation does not start with one.
inline constexpr std::string_view kSmolLMSystemPrompt = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

namespace detail {

// Python's str.strip() / Jinja's trim for the characters that occur in practice.
inline std::string_view strip(std::string_view s) {
  constexpr std::string_view kWs = " \t\n\r\v\f";
  const size_t b = s.find_first_not_of(kWs);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kWs) - b + 1);
}

inline void render_chatml_messages(std::span<const ChatMessage> msgs, std::string& out) {
  for (const ChatMessage& m : msgs) out.append("<|im_start|>").append(m.role).append("\n").append(m.content).append("<|im_end|>\n");
}

inline std::string render_chatml(std::span<const ChatMessage> msgs, bool gen) {
  std::string out;
  render_chatml_messages(msgs, out);
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

inline std::string render_smollm(std::span<const ChatMessage> msgs, bool gen) {
  std::string out;
  if (!msgs.empty() && msgs[0].role != "system")
    out.append("<|im_start|>system\n").append(kSmolLMSystemPrompt).append("<|im_end|>\n");
  render_chatml_messages(msgs, out);
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

// internlm/internlm2-chat-*: "{{ bos_token }}" then ChatML.
inline std::string render_internlm2(std::span<const ChatMessage> msgs, bool gen) {
  return "<s>" + render_chatml(msgs, gen);
}

// meta-llama/Meta-Llama-3-8B-Instruct: BOS only before the first message; contents are trimmed.
inline std::string render_llama3(std::span<const ChatMessage> msgs, bool gen) {
  std::string out;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (i == 0) out += "<|begin_of_text|>";
    out.append("<|start_header_id|>").append(msgs[i].role).append("<|end_header_id|>\n\n");
    out.append(strip(msgs[i].content)).append("<|eot_id|>");
  }
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// meta-llama/Llama-2-7b-chat-hf: an optional system message folds into the first user turn;
// then user/assistant must alternate. The template always ends ready for the assistant, so
// add_generation_prompt changes nothing.
inline std::string render_llama2(std::span<const ChatMessage> msgs, bool /*gen*/) {
  std::string_view system;
  bool has_system = false;
  if (!msgs.empty() && msgs[0].role == "system") {
    system = msgs[0].content;
    has_system = true;
    msgs = msgs.subspan(1);
  }
  std::string out;
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ChatMessage& m = msgs[i];
    const bool want_user = i % 2 == 0;
    if (m.role != (want_user ? "user" : "assistant"))
      fail("chat template llama2: roles must alternate user/assistant after an optional system message; message ",
           i + (has_system ? 1 : 0), " has role '", m.role, "'");
    if (want_user) {
      std::string content;
      if (i == 0 && has_system) content.append("<<SYS>>\n").append(system).append("\n<</SYS>>\n\n");
      content.append(m.content);
      out.append("<s>[INST] ").append(strip(content)).append(" [/INST]");
    } else {
      out.append(" ").append(strip(m.content)).append(" </s>");
    }
  }
  return out;
}

struct ChatTemplateDef {
  std::string_view name;
  std::string (*render)(std::span<const ChatMessage>, bool);
  std::vector<std::string_view> stops;  // strings that end the assistant's turn
};

inline const std::vector<ChatTemplateDef>& chat_templates() {
  static const std::vector<ChatTemplateDef> defs = {
      {"chatml", render_chatml, {"<|im_end|>"}},
      {"smollm", render_smollm, {"<|im_end|>"}},
      {"llama2", render_llama2, {"</s>"}},
      {"llama3", render_llama3, {"<|eot_id|>", "<|end_of_text|>"}},
      {"internlm2", render_internlm2, {"<|im_end|>"}},
  };
  return defs;
}

inline const ChatTemplateDef& find_chat_template(std::string_view name) {
  for (const auto& d : chat_templates())
    if (d.name == name) return d;
  std::string known;
  for (const auto& d : chat_templates()) known += (known.empty() ? "" : ", ") + std::string(d.name);
  fail("unknown chat template '", name, "' (known: ", known, ")");
}

}  // namespace detail

/// Names of the built-in templates.
inline std::vector<std::string> chat_template_names() {
  std::vector<std::string> names;
  for (const auto& d : detail::chat_templates()) names.emplace_back(d.name);
  return names;
}

/// The prompt text for `messages` under template `template_name`; with add_generation_prompt it
/// ends where the assistant's reply begins. Throws for an unknown name (listing the known ones).
inline std::string render_chat(std::string_view template_name, std::span<const ChatMessage> messages,
                               bool add_generation_prompt) {
  return detail::find_chat_template(template_name).render(messages, add_generation_prompt);
}

/// Strings that end an assistant turn under the template ("<|im_end|>", "<|eot_id|>", ...).
inline std::vector<std::string> chat_stop_strings(std::string_view template_name) {
  std::vector<std::string> out;
  for (std::string_view s : detail::find_chat_template(template_name).stops) out.emplace_back(s);
  return out;
}

/// Token ids that end an assistant turn: the stop strings that are single tokens of `tok`,
/// and its EOS token.
inline std::vector<int32_t> chat_stop_tokens(std::string_view template_name, const Tokenizer& tok) {
  std::vector<int32_t> ids;
  const auto add = [&](int32_t id) {
    if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (std::string_view s : detail::find_chat_template(template_name).stops) add(tok.token_id(s));
  add(tok.eos_id());
  return ids;
}

/// Picks the built-in template for a model's Jinja chat template by its markers. An unknown or
/// empty template gives "chatml", and `note` (if given) says why.
inline std::string detect_chat_template(std::string_view jinja, std::string* note = nullptr) {
  const auto has = [&](std::string_view s) { return jinja.find(s) != std::string_view::npos; };
  if (note) note->clear();
  if (has("<|im_start|>")) {
    // InternLM2's published template is ChatML after "{{ bos_token }}"; its tool-calling variants
    // name [UNUSED_TOKEN_146] or InternLM.
    if (has("[UNUSED_TOKEN_146]") || has("InternLM") || has("internlm") || has("bos_token")) return "internlm2";
    if (has("SmolLM")) return "smollm";
    return "chatml";
  }
  if (has("<|start_header_id|>")) return "llama3";
  if (has("[INST]")) return "llama2";
  if (note)
    *note = jinja.empty() ? "the model has no chat template; using chatml"
                          : "chat template not recognized; using chatml";
  return "chatml";
}

}  // namespace turbine
