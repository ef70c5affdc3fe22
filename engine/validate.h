// Field rules shared by the engine and its callers (CLI, HTTP), so a value
// is judged the same way at every door. Pure; thread-safe.
#pragma once

#include <string_view>

namespace buoni::engine {

// Well-formed UTF-8 (RFC 3629): no stray continuation bytes, no overlong
// forms, no surrogates, nothing above U+10FFFF. Text that ends up in JSON
// answers must be UTF-8.
[[nodiscard]] bool valid_utf8(std::string_view text);
// Programme and merchant ids: 1..limits::id_length_max of [A-Za-z0-9_.-].
[[nodiscard]] bool valid_object_id(std::string_view id);
// Display names: 1..limits::name_length_max bytes of well-formed UTF-8, no
// control characters.
[[nodiscard]] bool valid_name(std::string_view name);
// Beneficiary refs: 1..limits::beneficiary_ref_length_max printable ASCII.
[[nodiscard]] bool valid_beneficiary_ref(std::string_view ref);
// Shop references: 0..limits::reference_length_max bytes of well-formed
// UTF-8, no control characters.
[[nodiscard]] bool valid_reference(std::string_view ref);
// Idempotency keys (API.md): 1..64 of [A-Za-z0-9_-].
[[nodiscard]] bool valid_idempotency_key(std::string_view key);
// Italian Partita IVA: 11 digits (an "IT" prefix is allowed), the last being
// the check digit of the first ten (odd positions summed, even positions
// doubled with 9 subtracted above 9; check = (10 - sum mod 10) mod 10).
[[nodiscard]] bool valid_vat_number(std::string_view vat);

}  // namespace buoni::engine
