#pragma once
// TokenizerData: everything a Tokenizer is built from, as plain data. A GGUF reader fills the
// first block from `tokenizer.ggml.*`; tokenizer.json loading also fills the second.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pretokenize.hpp"

namespace turbine {

/// Everything a Tokenizer is built from, as plain data (from GGUF metadata or tokenizer.json).
struct TokenizerData {
  /// The BPE flavour.
  enum Kind { ByteLevelBpe, SentencePieceBpe } kind = ByteLevelBpe;  ///< the flavour in use
  std::vector<std::string> tokens;    ///< id -> text as stored (byte-level: GPT-2 byte alphabet)
  std::vector<float> scores;          ///< SentencePiece merge scores (GGUF "llama" model)
  std::vector<int32_t> token_types;   ///< GGUF: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;    ///< "a b", best first
  std::string pre;                    ///< GGUF tokenizer.ggml.pre (byte-level only)
  int bos = -1;                       ///< beginning-of-sequence id; -1: none
  int eos = -1;                       ///< end-of-sequence id; -1: none
  int unk = -1;                       ///< unknown-token id; -1: none
  int pad = -1;                       ///< padding id; -1: none
  bool add_bos = false;               ///< encoding prepends BOS
  bool add_space_prefix = false;      ///< SentencePiece: '▁' before the text; decoding drops it again

  // --- Not in GGUF files; the defaults reproduce llama.cpp's reading of a GGUF file. ---

  /// Overrides `pre` (tokenizer.json gives the splitter, not a name).
  std::optional<PreTokenizer> pre_tokenizer;
  /// Take a pre-token whole when it is in the vocabulary (Llama-3). GGUF: on for llama3-style `pre`.
  bool ignore_merges = false;
  /// Normalize text to NFC before splitting (tokenizer.json normalizer "NFC", Qwen2).
  bool nfc = false;
  /// SentencePiece: characters no token covers become `<0xNN>` tokens (else `<unk>`).
  bool byte_fallback = true;
  /// SentencePiece with merges: consecutive unknown characters become one `<unk>`.
  bool fuse_unk = false;
  /// How add_space_prefix applies. Always: every text segment (the Prepend normalizer, llama.cpp);
  /// IfMissing: unless the segment starts with a space (Metaspace, prepend_scheme "always");
  /// FirstIfMissing: the same, only for a segment at the start of the input ("first").
  enum class SpacePrefix { Always, IfMissing, FirstIfMissing } space_prefix = SpacePrefix::Always;  ///< see SpacePrefix

  /// Strings matched whole before BPE (tokenizer.json added_tokens). Empty: derived from
  /// token_types (control and unknown: special; user-defined: always matched).
  struct AddedToken {
    int32_t id;            ///< the token's id
    bool special;          ///< matched only when encode(parse_special = true); skipped by decode(skip_special)
    bool lstrip = false;   ///< also swallow the whitespace before it
    bool rstrip = false;   ///< also swallow the whitespace after it
  };
  std::vector<AddedToken> added;  ///< see AddedToken

  std::string source = "tokenizer";  ///< file name for error messages
};

}  // namespace turbine
