// Percent-encoding of request-target segments, for the tests and the fuzz
// corpus generator (tests/fuzz/make_corpus.cpp): every byte but RFC 3986's
// unreserved characters (ALPHA DIGIT - . _ ~) becomes %XX, upper-case hex.
// Header-only, so the fuzz build, which has no buoni_test_support, has it.
#pragma once

#include <string>
#include <string_view>

namespace buoni::test {

inline std::string percent_encoded(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace buoni::test
