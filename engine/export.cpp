#include "engine/export.h"

#include <charconv>
#include <deque>
#include <istream>
#include <ostream>

#include "crypto/hash.h"
#include "engine/codec.h"
#include "engine/engine.h"
#include "engine/export_format.h"
#include "engine/ledger.h"
#include "engine/limits.h"

namespace buoni::engine {

using namespace export_format;

std::string_view export_format_name(ExportFormat format) {
  return format == ExportFormat::csv ? "csv" : "jsonl";
}

namespace {

constexpr std::size_t checkpoint_chunk = 4096;  // checkpoints read per scan
constexpr std::uint64_t progress_every = 65536;

// The stored checkpoints from a seq on, read a chunk at a time.
class CheckpointCursor {
 public:
  CheckpointCursor(const Store& store, std::uint64_t from_seq) : store_(store), next_(from_seq) {}
  // The checkpoints with seq <= `seq` not taken yet, in seq order.
  Status take_through(std::uint64_t seq, std::vector<Checkpoint>& out) {
    out.clear();
    for (;;) {
      if (chunk_.empty() && !done_) BUONI_RETURN_IF_ERROR(refill());
      if (chunk_.empty() || chunk_.front().seq > seq) return Status();
      out.push_back(chunk_.front());
      chunk_.pop_front();
    }
  }

 private:
  Status refill() {
    Status bad;
    std::size_t read = 0;
    BUONI_RETURN_IF_ERROR(store_.scan(Space::meta, keys::checkpoint_prefix, keys::checkpoint(next_),
                                      [&](std::string_view, std::string_view value) {
                                        Checkpoint c;
                                        bad = decode(value, c);
                                        if (!bad.ok()) return false;
                                        chunk_.push_back(c);
                                        next_ = c.seq + 1;
                                        return ++read < checkpoint_chunk;
                                      }));
    BUONI_RETURN_IF_ERROR(bad);
    done_ = read < checkpoint_chunk;
    return Status();
  }
  const Store& store_;
  std::uint64_t next_;
  std::deque<Checkpoint> chunk_;
  bool done_ = false;
};

void write_checkpoint(LineWriter& w, const Checkpoint& c, std::ostream& out) {
  w.begin("checkpoint");
  w.unsigned_number(f_seq, c.seq);
  w.text(f_hash, to_hex(c.hash));
  w.number(f_time_ms, c.time_ms);
  w.unsigned_number(f_key_id, c.key_id);
  w.text(f_signature, to_hex(c.signature));
  out << w.finish();
}

// `body` is the stored entry_body bytes, exactly as hashed.
void write_entry(LineWriter& w, const Entry& e, const Hash32& prev, std::string_view body,
                 std::ostream& out) {
  w.begin("entry");
  w.unsigned_number(f_seq, e.seq);
  w.number(f_time_ms, e.time_ms);
  w.text(f_kind, entry_kind_name(e.kind));
  w.text(f_programme, e.programme);
  w.text(f_from, e.from.to_string());
  w.text(f_to, e.to.to_string());
  w.number(f_amount_cents, e.amount_cents);
  w.text(f_card, e.card);
  w.text(f_merchant, e.merchant);
  w.text(f_ref, e.ref);
  w.text(f_prev_hash, to_hex(prev));
  w.text(f_hash, to_hex(e.hash));
  w.text(f_body, to_hex(as_bytes(body)));
  out << w.finish();
}

StatusOr<Hash32> hash_before(const Store& store, std::uint64_t first_seq) {
  if (first_seq <= 1) return Hash32{};
  BUONI_ASSIGN_OR_RETURN(auto raw, store.get(Space::ledger, keys::ledger(first_seq - 1)));
  if (!raw) return corruption("ledger entry " + std::to_string(first_seq - 1) + " is missing");
  Entry before;
  BUONI_RETURN_IF_ERROR(decode(*raw, before));
  return before.hash;
}

}  // namespace

StatusOr<ExportSummary> export_ledger(const Store& store, std::uint64_t first_seq,
                                      ExportFormat format, TimeMs now_ms, std::ostream& out,
                                      const ExportProgress& progress) {
  BUONI_ASSIGN_OR_RETURN(ChainHead head, read_head(store));
  if (first_seq == 0 || first_seq > head.seq + 1) {
    return invalid_argument("--since " + std::to_string(first_seq) +
                            ": the ledger runs from seq 1 to " + std::to_string(head.seq));
  }
  BUONI_ASSIGN_OR_RETURN(Hash32 prev, hash_before(store, first_seq));
  ExportSummary summary{first_seq, first_seq - 1, 0, 0};
  LineWriter w(format);
  if (format == ExportFormat::csv) out << export_csv_columns << '\n';
  w.begin("header");
  w.text(f_format, export_format_v1);
  w.unsigned_number(f_first_seq, first_seq);
  w.text(f_prev_hash, to_hex(prev));
  w.unsigned_number(f_head_seq, head.seq);
  w.number(f_time_ms, now_ms);
  out << w.finish();

  CheckpointCursor checkpoints(store, first_seq);
  std::vector<Checkpoint> due;
  Status failure;
  BUONI_RETURN_IF_ERROR(
      store.scan(Space::ledger, "", keys::ledger(first_seq),
                 [&](std::string_view key, std::string_view value) {
                   if (keys::seq_of(key) > head.seq) return false;
                   Entry e;
                   failure = decode(value, e);
                   if (failure.ok()) failure = checkpoints.take_through(e.seq, due);
                   if (!failure.ok()) return false;
                   // value := u8(version) entry_body hash (engine/codec.h)
                   write_entry(w, e, prev, value.substr(1, value.size() - 1 - e.hash.size()), out);
                   for (const Checkpoint& c : due) {
                     if (c.seq != e.seq) continue;  // a checkpoint with no entry: not exportable
                     write_checkpoint(w, c, out);
                     ++summary.checkpoints;
                   }
                   prev = e.hash;
                   summary.last_seq = e.seq;
                   if (++summary.entries % progress_every == 0 && progress) {
                     progress(summary.entries, head.seq - first_seq + 1);
                   }
                   return static_cast<bool>(out);
                 }));
  BUONI_RETURN_IF_ERROR(failure);
  w.begin("end");
  w.unsigned_number(f_entries, summary.entries);
  w.unsigned_number(f_checkpoints, summary.checkpoints);
  out << w.finish();
  out.flush();
  if (!out) return io_error("writing the export failed");
  if (progress) progress(summary.entries, summary.entries);
  return summary;
}

}  // namespace buoni::engine
