#pragma once
// Pre-tokenizers: split text into the pieces BPE runs on, exactly as the regexes of Hugging Face
// tokenizers (Oniguruma) do, but hand-written (no std::regex: it is slow and has no \p{L}).
//
// Each splitter walks the text once; at every position it tries the regex alternatives in order,
// including the backtracking of `\s+(?!\S)` and `\s*[\r\n]+`, and returns where the match ends.
// Every character is matched by some alternative, so pieces tile the text. Ill-formed UTF-8 bytes
// count as "other" characters, so arbitrary bytes split without loss.
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "unicode.hpp"

namespace turbine {

/// How text is split into pieces before BPE; the regular expressions of each model family.
enum class PreTokenizer {
  None,        // the whole text is one piece (SentencePiece)
  Gpt2,        // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  Llama3,      // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  Qwen2,       // Llama3 with \p{N} (one digit per piece)
  Digits,      // HF Digits(individual_digits=true): every \p{N} alone
  DigitsGpt2,  // Digits, then Gpt2 on the rest (StarCoder, SmolLM)
};

namespace detail {

using unicode::CharClass;

struct Char {
  CharClass cls;
  uint32_t len;
  char32_t cp;
};

inline Char char_at(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return {unicode::char_class(c), 1, c};
  const unicode::DecodedChar d = unicode::decode_utf8(s, i);
  return {d.valid ? unicode::char_class(d.cp) : CharClass::Other, d.len, d.cp};
}

inline bool is_cr_lf(char c) { return c == '\r' || c == '\n'; }

/// End of the run of characters of class `cls` starting at `i`.
inline size_t run_end(std::string_view s, size_t i, CharClass cls) {
  while (i < s.size()) {
    const Char c = char_at(s, i);
    if (c.cls != cls) break;
    i += c.len;
  }
  return i;
}

/// Length of a contraction ('s 't 're 've 'm 'll 'd) at `i` (s[i] == '\''), 0 if none.
inline size_t contraction_len(std::string_view s, size_t i, bool ignore_case) {
  const auto letter = [&](size_t at, char lower, uint32_t& len) {
    if (at >= s.size()) return false;
    if (!ignore_case) { len = 1; return s[at] == lower; }
    const Char c = char_at(s, at);
    len = c.len;
    return unicode::equals_ignore_case(c.cp, lower);
  };
  uint32_t l1 = 0, l2 = 0;
  for (char c : {'s', 't', 'm', 'd'})
    if (letter(i + 1, c, l1)) return 1 + l1;
  for (const char* two : {"re", "ve", "ll"})
    if (letter(i + 1, two[0], l1) && letter(i + 1 + l1, two[1], l2)) return 1 + l1 + l2;
  return 0;
}

/// Whitespace alternatives shared by all patterns, at a whitespace character `i`:
/// `\s+(?!\S)` (a run that ends the text, or all of it but its last character) then `\s+`.
inline size_t match_trailing_space(std::string_view s, size_t i) {
  size_t j = i, last = i;
  while (j < s.size()) {
    const Char c = char_at(s, j);
    if (c.cls != CharClass::Space) break;
    last = j;
    j += c.len;
  }
  if (j == s.size() || last == i) return j;
  return last;  // leave one whitespace character to prefix the next word
}

inline size_t match_gpt2(std::string_view s, size_t i) {
  if (s[i] == '\'') {
    if (const size_t n = contraction_len(s, i, false)) return i + n;
  }
  const Char c = char_at(s, i);
  if (c.cls != CharClass::Space) return run_end(s, i + c.len, c.cls);  // \p{L}+ | \p{N}+ | other+
  if (s[i] == ' ' && i + 1 < s.size()) {  // ' ?' before a letter, number or other run
    const Char n = char_at(s, i + 1);
    if (n.cls != CharClass::Space) return run_end(s, i + 1 + n.len, n.cls);
  }
  return match_trailing_space(s, i);
}

/// Llama-3 (max_digits 3) and Qwen2 (max_digits 1).
inline size_t match_llama3(std::string_view s, size_t i, int max_digits) {
  if (s[i] == '\'') {
    if (const size_t n = contraction_len(s, i, true)) return i + n;
  }
  const Char c = char_at(s, i);
  const size_t next = i + c.len;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c.cls == CharClass::Letter) return run_end(s, next, CharClass::Letter);
  if (c.cls != CharClass::Number && !is_cr_lf(s[i]) && next < s.size() &&
      char_at(s, next).cls == CharClass::Letter)
    return run_end(s, next, CharClass::Letter);
  // \p{N}{1,max_digits}
  if (c.cls == CharClass::Number) {
    size_t j = next;
    for (int k = 1; k < max_digits && j < s.size(); ++k) {
      const Char d = char_at(s, j);
      if (d.cls != CharClass::Number) break;
      j += d.len;
    }
    return j;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t j = i;
  if (s[i] == ' ' && next < s.size() && char_at(s, next).cls == CharClass::Other) j = next;
  if (j < s.size() && char_at(s, j).cls == CharClass::Other) {
    j = run_end(s, j, CharClass::Other);
    while (j < s.size() && is_cr_lf(s[j])) ++j;
    return j;
  }
  // \s*[\r\n]+ : the whitespace run up to and including its last \r or \n
  size_t end = i, after_newline = 0;
  while (end < s.size()) {
    const Char w = char_at(s, end);
    if (w.cls != CharClass::Space) break;
    end += w.len;
    if (is_cr_lf(s[end - 1]) && w.len == 1) after_newline = end;
  }
  if (after_newline != 0) return after_newline;
  return match_trailing_space(s, i);
}

template <typename Match>
void split_with(std::string_view s, std::vector<std::string_view>& out, Match&& match) {
  for (size_t i = 0; i < s.size();) {
    const size_t j = match(s, i);
    out.push_back(s.substr(i, j - i));
    i = j;
  }
}

/// HF Digits(individual_digits=true): each \p{N} character alone, everything between as one piece.
template <typename Sink>
void split_digits(std::string_view s, Sink&& sink) {
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    const Char c = char_at(s, i);
    if (c.cls == CharClass::Number) {
      if (i > start) sink(s.substr(start, i - start));
      sink(s.substr(i, c.len));
      start = i + c.len;
    }
    i += c.len;
  }
  if (start < s.size()) sink(s.substr(start));
}

}  // namespace detail

/// Appends the pieces of `text` to `out` (views into `text`; they concatenate to `text`).
inline void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& out) {
  switch (kind) {
    case PreTokenizer::None:
      if (!text.empty()) out.push_back(text);
      return;
    case PreTokenizer::Gpt2:
      return detail::split_with(text, out, detail::match_gpt2);
    case PreTokenizer::Llama3:
      return detail::split_with(text, out, [](std::string_view s, size_t i) { return detail::match_llama3(s, i, 3); });
    case PreTokenizer::Qwen2:
      return detail::split_with(text, out, [](std::string_view s, size_t i) { return detail::match_llama3(s, i, 1); });
    case PreTokenizer::Digits:
      return detail::split_digits(text, [&](std::string_view p) { out.push_back(p); });
    case PreTokenizer::DigitsGpt2:
      return detail::split_digits(text, [&](std::string_view p) { detail::split_with(p, out, detail::match_gpt2); });
  }
}

/// The pieces of `text` (views into it) by the splitter `kind`.
inline std::vector<std::string_view> pre_tokenize(PreTokenizer kind, std::string_view text) {
  std::vector<std::string_view> out;
  pre_tokenize(kind, text, out);
  return out;
}

/// The name of `kind` as GGUF's tokenizer.ggml.pre spells it ("gpt2", "llama3", ...).
inline std::string_view pre_tokenizer_name(PreTokenizer kind) {
  switch (kind) {
    case PreTokenizer::None: return "none";
    case PreTokenizer::Gpt2: return "gpt2";
    case PreTokenizer::Llama3: return "llama3";
    case PreTokenizer::Qwen2: return "qwen2";
    case PreTokenizer::Digits: return "digits";
    case PreTokenizer::DigitsGpt2: return "digits+gpt2";
  }
  return "?";
}

namespace detail {
struct PreName {
  std::string_view name;
  PreTokenizer kind;
};
// GGUF `tokenizer.ggml.pre` values (llama.cpp's names) whose splitting we implement exactly.
// "default" (and a missing value) is llama.cpp's fallback for old files; we use GPT-2 for it.
inline constexpr PreName kGgufPreNames[] = {
    {"default", PreTokenizer::Gpt2},          {"gpt2", PreTokenizer::Gpt2},
    {"gpt-2", PreTokenizer::Gpt2},            {"mpt", PreTokenizer::Gpt2},
    {"olmo", PreTokenizer::Gpt2},             {"jais", PreTokenizer::Gpt2},
    {"smollm", PreTokenizer::DigitsGpt2},     {"starcoder", PreTokenizer::DigitsGpt2},
    {"refact", PreTokenizer::DigitsGpt2},     {"command-r", PreTokenizer::DigitsGpt2},
    {"codeshell", PreTokenizer::DigitsGpt2},  {"exaone", PreTokenizer::DigitsGpt2},
    {"minerva-7b", PreTokenizer::DigitsGpt2}, {"llama3", PreTokenizer::Llama3},
    {"llama-bpe", PreTokenizer::Llama3},      {"llama-v3", PreTokenizer::Llama3},
    {"falcon3", PreTokenizer::Llama3},        {"dbrx", PreTokenizer::Llama3},
    {"smaug-bpe", PreTokenizer::Llama3},      {"qwen2", PreTokenizer::Qwen2},
    {"deepseek-r1-qwen", PreTokenizer::Qwen2}, {"megrez", PreTokenizer::Qwen2},
};
}  // namespace detail

/// Comma-separated list of the GGUF pre-tokenizer names we know (for error messages).
inline std::string known_gguf_pre_names() {
  std::string s;
  for (const auto& p : detail::kGgufPreNames) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

/// Maps GGUF `tokenizer.ggml.pre` to a splitter; an empty name means "default".
inline PreTokenizer pre_tokenizer_from_gguf(std::string_view name) {
  if (name.empty()) return PreTokenizer::Gpt2;
  for (const auto& p : detail::kGgufPreNames)
    if (p.name == name) return p.kind;
  fail("tokenizer.ggml.pre: unsupported pre-tokenizer '", name, "' (known: ", known_gguf_pre_names(), ")");
}

namespace detail {
inline constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
}  // namespace detail

/// Recognizes a tokenizer.json `Split` regex; returns false if it is none of the patterns above.
inline bool pre_tokenizer_from_regex(std::string_view pattern, PreTokenizer& kind) {
  if (pattern == detail::kGpt2Regex) { kind = PreTokenizer::Gpt2; return true; }
  if (pattern == detail::kLlama3Regex) { kind = PreTokenizer::Llama3; return true; }
  if (pattern == detail::kQwen2Regex) { kind = PreTokenizer::Qwen2; return true; }
  return false;
}

}  // namespace turbine
