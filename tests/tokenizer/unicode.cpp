// UTF-8 decoding (maximal-subpart replacement like Python's errors="replace"), encoding, and the
// character classes of the pre-tokenizer regexes.
#include <doctest/doctest.h>

#include <string>

#include <turbine/tokenizer/unicode.hpp>

using namespace turbine::unicode;

TEST_CASE("unicode: decode well-formed sequences") {
  const std::string s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";  // a é 中 😀
  const char32_t want[] = {U'a', 0xE9, 0x4E2D, 0x1F600};
  size_t i = 0;
  for (char32_t cp : want) {
    const DecodedChar c = decode_utf8(s, i);
    CHECK(c.valid);
    CHECK(c.cp == cp);
    CHECK(encode_utf8(cp) == s.substr(i, c.len));
    i += c.len;
  }
  CHECK(i == s.size());
}

TEST_CASE("unicode: ill-formed sequences become U+FFFD per maximal subpart") {
  // Examples from Unicode 15 section 3.9 (table 3-8): each line's replacement count.
  CHECK(sanitize_utf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");            // overlong lead
  CHECK(sanitize_utf8("\xE0\x80\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong 3-byte
  CHECK(sanitize_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(sanitize_utf8("\xF4\x90\x80\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(sanitize_utf8("\xE4\xB8" "a") == "\xEF\xBF\xBD" "a");  // truncated prefix: one U+FFFD
  CHECK(sanitize_utf8("\xF0\x9F\x98") == "\xEF\xBF\xBD");
  CHECK(sanitize_utf8("\xFF") == "\xEF\xBF\xBD");
  const DecodedChar t = decode_utf8("\xF0\x9F", 0);
  CHECK_FALSE(t.valid);
  CHECK(t.truncated);
  CHECK(t.len == 2);
  CHECK_FALSE(decode_utf8("\xF0\x9F" "a", 0).truncated);
  CHECK(is_valid_utf8("h\xC3\xA9llo"));
  CHECK_FALSE(is_valid_utf8("h\xC3llo"));
  CHECK(encode_utf8(0xD800) == "\xEF\xBF\xBD");
  CHECK(encode_utf8(0x110000) == "\xEF\xBF\xBD");
}

TEST_CASE("unicode: character classes") {
  CHECK(is_letter(U'a'));
  CHECK(is_letter(0x4E2D));   // 中
  CHECK(is_letter(0x00E9));   // é
  CHECK(is_letter(0x3042));   // あ
  CHECK_FALSE(is_letter(0x0301));  // combining acute: a mark, not a letter
  CHECK(is_number(U'7'));
  CHECK(is_number(0x00B2));   // ²
  CHECK(is_number(0x216B));   // Ⅻ
  CHECK(is_number(0x0663));   // Arabic-Indic 3
  for (char32_t c : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2028, 0x2029, 0x3000})
    CHECK(is_space(c));
  for (char32_t c : {0x1C, 0x200B, 0xFEFF, 0x1F600}) CHECK(char_class(c) == CharClass::Other);
  CHECK(char_class(0x10FFFF) == CharClass::Other);
  CHECK(char_class(0x110000) == CharClass::Other);
  CHECK(equals_ignore_case(U'S', 's'));
  CHECK(equals_ignore_case(0x017F, 's'));
  CHECK_FALSE(equals_ignore_case(0x017F, 't'));
}
