// verify_export (engine/export.h): reads an export record by record and
// checks it with the public keys alone.
#include <algorithm>
#include <charconv>
#include <istream>

#include "crypto/hash.h"
#include "engine/codec.h"
#include "engine/export.h"
#include "engine/export_format.h"
#include "engine/ledger.h"
#include "engine/limits.h"

namespace buoni::engine {

using namespace export_format;

namespace {

constexpr std::string_view entry_tag = "buoni-entry-v1";
constexpr std::uint64_t progress_every_bytes = 16 << 20;

template <typename T>
bool parse_int(std::string_view text, T& out) {
  auto r = std::from_chars(text.data(), text.data() + text.size(), out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size() && !text.empty();
}

std::string range(std::uint64_t from, std::uint64_t to) {
  return from == to ? "entry " + std::to_string(from)
                    : "entries " + std::to_string(from) + ".." + std::to_string(to);
}

class Verifier {
 public:
  explicit Verifier(const std::vector<VerifyKey>& keys) : keys_(keys) {}
  void line(std::string_view text);  // one whole record line (csv: row)
  void finish(bool unterminated);
  // A csv row goes on past this line while a quoted cell is open.
  [[nodiscard]] bool csv_body() const {
    return state_ != State::start && v.format == ExportFormat::csv;
  }
  ExportVerdict v;

 private:
  bool take_record(std::string_view text);
  bool required(std::initializer_list<Field> fields);
  bool hex_field(Field f, std::span<std::uint8_t> out);
  template <typename T>
  bool int_field(Field f, T& out);
  void header();
  void entry();
  bool entry_fields(std::uint64_t seq, const Entry& e);
  enum class Order { next, after_gap, misplaced };
  Order entry_order(std::uint64_t seq);
  void entry_chain(std::uint64_t seq, Order order, const Hash32& prev, const Hash32& hash,
                   std::string_view body);
  void checkpoint();
  void end();
  void find(std::string check, std::uint64_t seq, std::string detail) {
    if (++v.findings_total <= limits::audit_findings_max) {
      v.findings.push_back(
          {std::move(check), seq, "line " + std::to_string(v.lines), std::move(detail)});
    }
  }

  const std::vector<VerifyKey>& keys_;
  enum class State { start, header, body, after_end } state_ = State::start;
  std::vector<Field> columns_;  // csv
  std::vector<std::string> cells_;
  Record r_;
  std::string error_, body_;
  Entry entry_;                               // the last entry's decoded body
  std::uint64_t last_seq_ = 0;                // the highest seq read in order
  Hash32 last_hash_{};                        // its hash field
  std::uint64_t covered_seq_ = 0;             // the last seq a good checkpoint signs
  std::uint64_t gap_seq_ = 0, gap_line_ = 0;  // a one-entry gap just reported
};

bool Verifier::take_record(std::string_view text) {
  if (v.format == ExportFormat::jsonl) {
    if (parse_json_line(text, r_, error_)) return true;
    find("format", 0, error_);
    return false;
  }
  error_.clear();
  if (!split_csv_row(text, cells_, error_)) {
    find("format", 0, error_.empty() ? "unterminated quoted cell" : error_);
    return false;
  }
  if (cells_.size() != columns_.size()) {
    find("format", 0,
         std::to_string(cells_.size()) + " cells, the column line names " +
             std::to_string(columns_.size()));
    return false;
  }
  r_.clear();
  for (std::size_t i = 0; i < cells_.size(); ++i) {
    Field f = columns_[i];
    r_.value[f].swap(cells_[i]);
    r_.present[f] = !r_.value[f].empty();
    r_.quoted[f] = !is_number(f);
  }
  return true;
}

void Verifier::line(std::string_view text) {
  ++v.lines;
  if (state_ == State::start) {
    state_ = State::header;
    if (text.starts_with("{")) {
      v.format = ExportFormat::jsonl;
    } else {
      v.format = ExportFormat::csv;
      for (std::size_t at = 0; at <= text.size();) {
        std::size_t comma = std::min(text.find(',', at), text.size());
        Field f = field_of(text.substr(at, comma - at));
        if (f == field_count) {
          find("format", 0, "not a buoni export: the first line is neither JSON nor its columns");
          state_ = State::after_end;
          return;
        }
        columns_.push_back(f);
        at = comma + 1;
      }
      return;
    }
  }
  if (state_ == State::after_end) {
    if (!text.empty() && v.findings_total == 0) find("end", 0, "data after the end record");
    return;
  }
  if (!take_record(text)) return;
  const std::string& kind = r_.value[f_record];
  if (!r_.present[f_record]) {
    find("format", 0, "record without a \"record\" field");
  } else if (state_ == State::header) {
    if (kind == "header") return header();
    find("format", 0, "the file does not start with a header record");
    state_ = State::after_end;
  } else if (kind == "entry") {
    entry();
  } else if (kind == "checkpoint") {
    checkpoint();
  } else if (kind == "end") {
    end();
  } else {
    find("format", 0, "unknown record \"" + kind + "\"");
  }
}

bool Verifier::required(std::initializer_list<Field> fields) {
  bool ok = true;
  for (Field f : fields) {
    bool may_be_empty = v.format == ExportFormat::csv && !is_number(f) && f != f_prev_hash &&
                        f != f_hash && f != f_body && f != f_signature && f != f_format;
    if (!r_.present[f] && !may_be_empty) {
      find("format", 0, "missing field \"" + std::string(field_name(f)) + "\"");
      ok = false;
    } else if (r_.present[f] && v.format == ExportFormat::jsonl && r_.quoted[f] == is_number(f)) {
      find("format", 0,
           "field \"" + std::string(field_name(f)) + "\" must be a JSON " +
               (is_number(f) ? "integer" : "string"));
      ok = false;
    }
  }
  std::uint32_t wanted = 1u << f_record;
  for (Field f : fields) wanted |= 1u << f;
  for (std::size_t f = 0; f < field_count; ++f) {
    if (r_.present[f] && !(wanted & (1u << f))) {
      find("format", 0,
           "field \"" + std::string(field_name(static_cast<Field>(f))) +
               "\" does not belong in a " + r_.value[f_record] + " record");
      ok = false;
    }
  }
  return ok;
}

bool Verifier::hex_field(Field f, std::span<std::uint8_t> out) {
  if (from_hex(r_.value[f], out)) return true;
  find("format", 0,
       std::string(field_name(f)) + " is not " + std::to_string(out.size() * 2) + " hex digits");
  return false;
}

template <typename T>
bool Verifier::int_field(Field f, T& out) {
  if (parse_int(r_.value[f], out)) return true;
  find("format", 0, std::string(field_name(f)) + " \"" + r_.value[f] + "\" is not a valid number");
  return false;
}

void Verifier::header() {
  state_ = State::body;
  if (!required({f_format, f_first_seq, f_prev_hash, f_head_seq, f_time_ms})) return;
  if (r_.value[f_format] != export_format_v1) {
    find("format", 0,
         "format \"" + r_.value[f_format] + "\" is not " + std::string(export_format_v1));
    state_ = State::after_end;
    return;
  }
  std::int64_t time_ms = 0;
  bool ok = int_field(f_first_seq, v.first_seq) & int_field(f_head_seq, v.head_seq) &
            int_field(f_time_ms, time_ms) & hex_field(f_prev_hash, v.prev_hash);
  if (ok && v.first_seq == 0) find("format", 0, "first_seq is 0: seqs start at 1");
  if (ok && v.first_seq == 1 && v.prev_hash != Hash32{}) {
    find("chain", 1, "prev_hash of an export from seq 1 must be 32 zero bytes");
  }
  last_seq_ = v.first_seq == 0 ? 0 : v.first_seq - 1;
  last_hash_ = v.prev_hash;
  covered_seq_ = last_seq_;
}

Hash32 chain_of(const Hash32& prev, std::string_view body) {
  Hasher h;
  h.update(prev);
  h.update(entry_tag);
  h.update(body);
  return h.finish();
}

void Verifier::entry() {
  ++v.entries;
  if (!required({f_seq, f_time_ms, f_kind, f_programme, f_from, f_to, f_amount_cents, f_card,
                 f_merchant, f_ref, f_prev_hash, f_hash, f_body})) {
    return;
  }
  std::uint64_t seq = 0;
  Hash32 prev{}, hash{};
  if (!(int_field(f_seq, seq) & hex_field(f_prev_hash, prev) & hex_field(f_hash, hash))) return;
  // What codec.h decodes: u8(version) entry_body hash.
  const std::string& hex = r_.value[f_body];
  std::size_t body_bytes = hex.size() / 2;
  body_.resize(1 + body_bytes + hash.size());
  body_[0] = static_cast<char>(format_v1);
  auto* bytes = reinterpret_cast<std::uint8_t*>(body_.data());
  if (hex.size() % 2 || !from_hex(hex, std::span(bytes + 1, body_bytes))) {
    find("format", seq, "body is not hex");
    return;
  }
  std::copy(hash.begin(), hash.end(), bytes + 1 + body_bytes);
  Entry& e = entry_;  // reused: its strings keep their storage
  if (!decode(body_, e).ok()) {
    find("entry", seq, "body does not decode as a ledger entry (engine/codec.h entry_body)");
  } else {
    entry_fields(seq, e);
  }
  entry_chain(seq, entry_order(seq), prev, hash, std::string_view(body_).substr(1, body_bytes));
}

// The readable fields must say what the encoded entry says. Compared in
// place (no strings built per entry); the message is built on a mismatch.
bool Verifier::entry_fields(std::uint64_t seq, const Entry& e) {
  std::size_t before = v.findings_total;
  auto mismatch = [&](Field f, std::string decoded) {
    find("entry", seq,
         std::string(field_name(f)) + " is \"" + r_.value[f] + "\" in the readable fields but \"" +
             decoded + "\" in the encoded entry (body)");
  };
  auto check = [&](Field f, std::string_view decoded) {
    if (r_.value[f] != decoded) mismatch(f, std::string(decoded));
  };
  auto check_number = [&](Field f, auto decoded) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, decoded).ptr;
    check(f, std::string_view(digits, static_cast<std::size_t>(end - digits)));
  };
  auto check_account = [&](Field f, const Account& decoded) {
    if (!decoded.text_equals(r_.value[f])) mismatch(f, decoded.to_string());
  };
  check_number(f_seq, e.seq);
  check_number(f_time_ms, e.time_ms);
  check(f_kind, entry_kind_name(e.kind));
  check(f_programme, e.programme);
  check_account(f_from, e.from);
  check_account(f_to, e.to);
  check_number(f_amount_cents, e.amount_cents);
  check(f_card, e.card);
  check(f_merchant, e.merchant);
  check(f_ref, e.ref);
  return v.findings_total == before;
}

Verifier::Order Verifier::entry_order(std::uint64_t seq) {
  if (seq == last_seq_ + 1) return Order::next;
  if (seq > last_seq_ + 1) {
    find("order", seq,
         range(last_seq_ + 1, seq - 1) + " missing before entry " + std::to_string(seq) +
             " (removed, or moved)");
    gap_seq_ = seq - 1 == last_seq_ + 1 ? seq - 1 : 0;
    gap_line_ = v.lines;
    return Order::after_gap;
  }
  bool swapped = seq == gap_seq_ && gap_line_ + 1 == v.lines && seq + 1 == last_seq_;
  if (swapped && !v.findings.empty() && v.findings.back().seq == seq + 1) {
    v.findings.back() = {"order", seq, "line " + std::to_string(v.lines),
                         "entries " + std::to_string(seq) + " and " + std::to_string(seq + 1) +
                             " are in the wrong order (swapped)"};
  } else if (seq == last_seq_) {
    find("order", seq,
         "entry " + std::to_string(seq) + " appears twice (an entry was inserted or repeated)");
  } else {
    find("order", seq,
         "entry " + std::to_string(seq) + " comes after entry " + std::to_string(last_seq_) +
             ": out of order (moved or inserted)");
  }
  gap_seq_ = 0;
  return Order::misplaced;
}

void Verifier::entry_chain(std::uint64_t seq, Order order, const Hash32& prev, const Hash32& hash,
                           std::string_view body) {
  std::string s = std::to_string(seq);
  if (order == Order::next && prev != last_hash_) {
    if (chain_of(prev, body) == hash) {
      find("chain", seq - 1,
           "entry " + std::to_string(seq - 1) + "'s hash is not the one entry " + s +
               " is chained to (its prev_hash): entry " + std::to_string(seq - 1) +
               " was changed and its hash recomputed, or entries before " + s +
               " were removed, inserted or replaced");
    } else {
      find("chain", seq,
           "prev_hash is not the previous entry's hash and hash does not match the contents: "
           "entry " +
               s + " was changed");
    }
  } else if (chain_of(order == Order::next ? last_hash_ : prev, body) != hash) {
    find("chain", seq,
         "hash does not match the entry's contents and previous hash: entry " + s + " was changed");
  }
  if (order == Order::misplaced) return;
  last_seq_ = seq;
  last_hash_ = hash;
}

void Verifier::checkpoint() {
  ++v.checkpoints;
  if (!required({f_seq, f_hash, f_time_ms, f_key_id, f_signature})) return;
  Checkpoint c;
  if (!(int_field(f_seq, c.seq) & hex_field(f_hash, c.hash) & int_field(f_time_ms, c.time_ms) &
        int_field(f_key_id, c.key_id) & hex_field(f_signature, c.signature))) {
    return;
  }
  bool known = false;
  for (const auto& k : keys_) known = known || k.key_id == c.key_id;
  std::string key = "key " + std::to_string(c.key_id);
  bool signed_ok = known && verify_checkpoint(c, keys_);
  if (!known) {
    find("checkpoint", c.seq, key + " is not among the public keys");
  } else if (!signed_ok) {
    find("checkpoint", c.seq,
         "signature does not verify with the public " + key +
             ": the checkpoint was forged or altered");
  }
  std::string s = std::to_string(c.seq);
  if (c.seq != last_seq_ || v.entries == 0) {
    find("checkpoint", c.seq,
         "out of place: it signs seq " + s + " but follows entry " + std::to_string(last_seq_));
  } else if (c.hash != last_hash_) {
    find("checkpoint", c.seq,
         "signs another hash for entry " + s +
             " than the file's: " + range(covered_seq_ + 1, c.seq) + " changed (and re-hashed)");
  } else if (signed_ok) {
    covered_seq_ = c.seq;
    if (v.findings_total == 0) {
      v.verified_seq = c.seq;
      v.verified_entries = v.entries;
    }
  }
}

void Verifier::end() {
  state_ = State::after_end;
  v.complete = true;
  std::uint64_t entries = 0, checkpoints = 0;
  if (!required({f_entries, f_checkpoints}) ||
      !(int_field(f_entries, entries) & int_field(f_checkpoints, checkpoints))) {
    return;
  }
  if (entries != v.entries || checkpoints != v.checkpoints) {
    find("end", 0,
         "the end record counts " + std::to_string(entries) + " entries and " +
             std::to_string(checkpoints) + " checkpoints, the file has " +
             std::to_string(v.entries) + " and " + std::to_string(v.checkpoints) +
             ": records were removed or added");
  }
  if (last_seq_ > covered_seq_) {
    find("checkpoint", last_seq_,
         range(covered_seq_ + 1, last_seq_) + " not covered by a signed checkpoint");
  }
  if (v.head_seq != last_seq_) {
    find("end", last_seq_,
         "the header names head seq " + std::to_string(v.head_seq) + ", the last entry is " +
             std::to_string(last_seq_));
  }
}

void Verifier::finish(bool unterminated) {
  if (state_ == State::start) find("format", 0, "empty file: not a buoni export");
  if (unterminated) v.complete = false;
}

}  // namespace

std::string ExportVerdict::summary() const {
  std::string start = first_seq > 1 ? " (the file starts at seq " + std::to_string(first_seq) +
                                          ", chained to its header's prev_hash)"
                                    : "";
  if (ok()) {
    if (entries == 0) return "all 0 entries verified (an empty export)" + start;
    return "all " + std::to_string(entries) + " entries verified, up to checkpoint seq " +
           std::to_string(verified_seq) + start;
  }
  std::string partial = verified_seq
                            ? "verified only up to checkpoint seq " + std::to_string(verified_seq) +
                                  " (" + std::to_string(verified_entries) + " entries)" + start
                            : "no signed checkpoint verified" + start;
  if (findings_total == 0) {
    return "file cut short after line " + std::to_string(lines) + " (no end record): " + partial;
  }
  return std::to_string(findings_total) + " findings: " + partial;
}

StatusOr<ExportVerdict> verify_export(std::istream& in, const std::vector<VerifyKey>& keys,
                                      std::uint64_t total_bytes, const ExportProgress& progress) {
  Verifier verifier(keys);
  std::string line, row;
  std::uint64_t bytes = 0, next_report = progress_every_bytes;
  bool unterminated = false;
  while (std::getline(in, line)) {
    if (in.eof()) {  // no "\n": the file was cut inside its last line
      unterminated = true;
      break;
    }
    bytes += line.size() + 1;
    if (verifier.csv_body()) {
      if (row.empty()) {
        row.swap(line);
      } else {
        (row += "\n") += line;
      }
      // A quoted cell is open while the row holds an odd number of quotes.
      if (std::count(row.begin(), row.end(), '"') % 2) continue;
      verifier.line(row);
      row.clear();
    } else {
      verifier.line(line);
    }
    if (progress && bytes >= next_report) {
      progress(bytes, total_bytes);
      next_report = bytes + progress_every_bytes;
    }
  }
  if (in.bad()) return io_error("reading the export failed");
  verifier.finish(unterminated || !row.empty());
  if (progress) progress(total_bytes ? total_bytes : bytes, total_bytes ? total_bytes : bytes);
  return std::move(verifier.v);
}

}  // namespace buoni::engine
