#pragma once
// IncrementalDecoder: turns generated ids into text one id at a time, for streaming. A token may
// end in the middle of a UTF-8 character (byte-level BPE splits emoji and CJK across tokens), so
// the bytes of an unfinished character are held back until the next token completes it; the
// pieces returned concatenate to exactly what Tokenizer::decode gives for all ids at once.
#include <cstdint>
#include <string>

#include "tokenizer.hpp"
#include "unicode.hpp"

namespace turbine {

/// Turns generated ids into text piece by piece, holding back bytes until they form whole UTF-8
/// characters (so a streamed piece never ends inside a character).
class IncrementalDecoder {
 public:
  /// `tok` must outlive the decoder.
  explicit IncrementalDecoder(const Tokenizer& tok, bool skip_special = false)
      : tok_(&tok), skip_special_(skip_special) {}

  /// Adds one id; returns the text it completes (possibly empty), always valid UTF-8.
  std::string push(int32_t id) {
    tok_->append_piece(id, skip_special_, at_start_, pending_);
    std::string out;
    size_t i = 0;
    while (i < pending_.size()) {
      const unicode::DecodedChar c = unicode::decode_utf8(pending_, i);
      if (c.truncated) break;  // may still be completed by the next token
      if (c.valid) {
        out.append(pending_, i, c.len);
      } else {
        unicode::encode_utf8(unicode::kReplacement, out);
      }
      i += c.len;
    }
    pending_.erase(0, i);
    return out;
  }

  /// Ends the stream: returns what was held back (an unfinished character as U+FFFD) and resets.
  std::string flush() {
    std::string out = unicode::sanitize_utf8(pending_);
    reset();
    return out;
  }

  /// Forgets everything, as for a new stream.
  void reset() {
    pending_.clear();
    at_start_ = true;
  }

  /// Bytes held back (at most 3: the start of one UTF-8 character).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  bool at_start_ = true;
  std::string pending_;
};

}  // namespace turbine
