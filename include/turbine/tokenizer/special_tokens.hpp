#pragma once
// Finds special and added tokens (<|im_start|>, <s>, ...) in text before BPE sees it, so that
// they become their own ids and never merge with neighbouring text.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace turbine::detail {

class SpecialTokenMatcher {
 public:
  struct Entry {
    std::string text;
    int32_t id;
    bool special;
    bool lstrip, rstrip;
  };

  SpecialTokenMatcher() = default;

  explicit SpecialTokenMatcher(std::vector<Entry> entries) : entries_(std::move(entries)) {
    // Longest first within each first byte, so the first hit at a position is the leftmost-longest
    // match, as in Hugging Face's added-vocabulary matcher.
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
    for (size_t i = 0; i < entries_.size(); ++i)
      if (!entries_[i].text.empty()) by_first_byte_[static_cast<uint8_t>(entries_[i].text[0])].push_back(uint32_t(i));
  }

  bool empty() const { return entries_.empty(); }

  /// Calls on_text(std::string_view segment, size_t offset) for the text between matches and
  /// on_token(int32_t id) for each match, in order. Empty segments are not reported.
  template <typename OnText, typename OnToken>
  void split(std::string_view s, bool parse_special, OnText&& on_text, OnToken&& on_token) const {
    size_t seg = 0;
    for (size_t i = 0; i < s.size();) {
      const Entry* hit = nullptr;
      for (uint32_t k : by_first_byte_[static_cast<uint8_t>(s[i])]) {
        const Entry& e = entries_[k];
        if ((parse_special || !e.special) && s.compare(i, e.text.size(), e.text) == 0) {
          hit = &e;
          break;
        }
      }
      if (!hit) {
        ++i;
        continue;
      }
      size_t end = i;
      if (hit->lstrip)
        while (end > seg && is_blank(s[end - 1])) --end;
      if (end > seg) on_text(s.substr(seg, end - seg), seg);
      on_token(hit->id);
      i += hit->text.size();
      if (hit->rstrip)
        while (i < s.size() && is_blank(s[i])) ++i;
      seg = i;
    }
    if (seg < s.size()) on_text(s.substr(seg), seg);
  }

 private:
  // lstrip/rstrip swallow ASCII whitespace only (all that chat templates put around tokens).
  static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

  std::vector<Entry> entries_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;
};

}  // namespace turbine::detail
