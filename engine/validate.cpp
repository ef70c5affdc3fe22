#include "engine/validate.h"

#include "engine/limits.h"

namespace buoni::engine {

namespace {
bool all_of(std::string_view s, bool (*pred)(char)) {
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}
bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_id_char(char c) {
  return is_alnum(c) || c == '_' || c == '-' || c == '.';
}
bool is_key_char(char c) {
  return is_alnum(c) || c == '_' || c == '-';
}
bool is_not_control(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u != 0x7f;
}
bool is_printable_ascii(char c) {
  return c >= 0x20 && c < 0x7f;
}
}  // namespace

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    // Continuation bytes after the lead byte b; 0: b cannot lead.
    std::size_t n = (b >= 0xC2 && b <= 0xDF) ? 1 : (b >= 0xE0 && b <= 0xEF) ? 2
                    : (b >= 0xF0 && b <= 0xF4) ? 3 : 0;
    if (n == 0 || s.size() - i <= n) return false;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range (RFC 3629, table 3-7)
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
    for (std::size_t k = 1; k <= n; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

bool valid_object_id(std::string_view id) {
  return !id.empty() && id.size() <= limits::id_length_max && all_of(id, is_id_char);
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= limits::name_length_max && all_of(name, is_not_control) &&
         valid_utf8(name);
}

bool valid_beneficiary_ref(std::string_view ref) {
  return !ref.empty() && ref.size() <= limits::beneficiary_ref_length_max &&
         all_of(ref, is_printable_ascii);
}

bool valid_reference(std::string_view ref) {
  return ref.size() <= limits::reference_length_max && all_of(ref, is_not_control) &&
         valid_utf8(ref);
}

bool valid_idempotency_key(std::string_view key) {
  return !key.empty() && key.size() <= limits::idempotency_key_length_max &&
         all_of(key, is_key_char);
}

bool valid_vat_number(std::string_view vat) {
  if (vat.starts_with("IT")) vat.remove_prefix(2);
  if (vat.size() != 11) return false;
  int sum = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    if (vat[i] < '0' || vat[i] > '9') return false;
    int digit = vat[i] - '0';
    if (i % 2 == 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  if (vat[10] < '0' || vat[10] > '9') return false;
  return (10 - sum % 10) % 10 == vat[10] - '0';
}

}  // namespace buoni::engine
