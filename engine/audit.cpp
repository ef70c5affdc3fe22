#include "engine/audit.h"

#include <algorithm>
#include <array>
#include <map>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "crypto/hash.h"
#include "crypto/random.h"
#include "engine/codec.h"
#include "engine/engine.h"
#include "engine/ledger.h"
#include "engine/limits.h"
#include "engine/settle.h"

namespace buoni::engine {

std::string Finding::to_string() const {
  std::string s = check;
  if (seq) s += " at entry " + std::to_string(seq);
  if (!object.empty()) s += " (" + object + ")";
  return s + ": " + detail;
}

namespace {

std::string programme_of_owner(const Account& a) {
  if (a.kind == AccountKind::payable || a.kind == AccountKind::settled) {
    return a.owner.substr(a.owner.find(':') + 1);
  }
  return a.owner;  // budget, pool, expired: the programme; card/held: mapped later
}

std::string vs(Cents expected, Cents found) {
  return "expected " + std::to_string(expected) + ", found " + std::to_string(found);
}

struct AccountHash {
  std::size_t operator()(const Account& a) const noexcept {
    return std::hash<std::string>{}(a.owner) ^ static_cast<std::size_t>(a.kind);
  }
};

// One Auditor walks the ledger and checks what depends on it; a second one,
// on its own thread, reads what only depends on stored state (holds,
// redemptions, the ledger index's checksum) at the same time. Both read the
// same store (thread-safe reads) and keep their own findings; the walker
// merges the side's findings after both are done, so the report's order is
// the same every run.
class Auditor {
 public:
  Auditor(const Store& store, const std::vector<VerifyKey>& keys, const ShortHashKey& index_key)
      : store_(store), keys_(keys), index_key_(index_key) {}
  Status run(const AuditProgress& progress);
  Status run_side();
  Status finish(Auditor& side);
  AuditReport report;

 private:
  Status load_checkpoints();
  Status walk_ledger(const AuditProgress& progress);
  void take_entry(const Entry& e);
  Status check_head();
  Status check_cards();
  Status check_programmes();
  Status check_holds();
  Status check_redemptions();
  Status scan_index();
  Status check_index_exactly();
  std::uint64_t row_digest(std::string_view key, std::string_view value);
  Status check_index_row(std::string_view key, std::string_view value, bool& listed);
  Status find_unlisted();
  void find(std::string check, std::uint64_t seq, std::string object, std::string detail) {
    if (report.findings.size() < limits::audit_findings_max) {
      report.findings.push_back({std::move(check), seq, std::move(object), std::move(detail)});
    }
  }
  template <typename T>
  Status each(std::string_view prefix, const std::function<void(const T&)>& fn);
  Cents balance(AccountKind kind, const std::string& owner) const {
    auto it = balances_.find(Account{kind, owner});
    return it == balances_.end() ? 0 : it->second;
  }

  const Store& store_;
  const std::vector<VerifyKey>& keys_;
  std::map<std::uint64_t, Hash32> checkpoint_hashes_;
  std::unordered_map<Account, Cents, AccountHash> balances_;
  std::map<std::string, Cents> redeemed_by_programme_, refunded_by_programme_, held_by_programme_;
  std::unordered_map<std::string, std::string> card_programme_;  // card id -> programme
  Entry entry_;                                                  // the walk's, reused
  std::vector<IndexRow> rows_;                                   // index rows of entry_
  std::uint64_t index_rows_expected_ = 0;                        // index rows the entries call for
  // The sum (mod 2^64) of row_digest over those rows: the index holds exactly
  // them when its rows have the same count and sum (a secret-keyed PRF, so
  // no stored rows can be made to collide without the key).
  std::uint64_t index_sum_expected_ = 0;
  std::uint64_t index_rows_found_ = 0, index_sum_found_ = 0;  // the side's scan of the index
  const ShortHashKey& index_key_;
  std::string digest_buffer_;
  ChainHead last_;
};

template <typename T>
Status Auditor::each(std::string_view prefix, const std::function<void(const T&)>& fn) {
  return store_.scan(Space::state, prefix, prefix,
                     [&](std::string_view key, std::string_view value) {
                       T item;
                       Status s = decode(value, item);
                       if (!s.ok()) {
                         find("decode", 0, std::string(key.substr(0, 2)), s.message());
                         return true;
                       }
                       fn(item);
                       return true;
                     });
}

Status Auditor::load_checkpoints() {
  return store_.scan(Space::meta, keys::checkpoint_prefix, keys::checkpoint_prefix,
                     [&](std::string_view, std::string_view value) {
                       Checkpoint c;
                       if (!decode(value, c).ok()) {
                         find("checkpoint", 0, "", "undecodable checkpoint record");
                         return true;
                       }
                       ++report.checkpoints;
                       if (!verify_checkpoint(c, keys_)) {
                         find("checkpoint", c.seq, "key " + std::to_string(c.key_id),
                              "signature does not verify with the public keys");
                       }
                       checkpoint_hashes_[c.seq] = c.hash;
                       return true;
                     });
}

void Auditor::take_entry(const Entry& e) {
  if (e.amount_cents <= 0) find("entry", e.seq, "", "amount is not positive");
  for (const Account* a : {&e.from, &e.to}) {
    if (a->kind == AccountKind::card || a->kind == AccountKind::held) {
      auto it = card_programme_.find(a->owner);
      if (it == card_programme_.end()) {
        card_programme_.emplace(a->owner, e.programme);
      } else if (it->second != e.programme) {
        find("conservation", e.seq, a->owner, "entry moves money across programmes");
      }
    } else if (programme_of_owner(*a) != e.programme) {
      find("conservation", e.seq, a->to_string(), "account is not of the entry's programme");
    }
  }
  Cents& from = balances_[e.from];
  from -= e.amount_cents;
  balances_[e.to] += e.amount_cents;
  bool card_side = e.from.kind == AccountKind::card || e.from.kind == AccountKind::held;
  if (card_side && from < 0) {
    find("negative_balance", e.seq, e.from.to_string(), "balance went to " + std::to_string(from));
  }
  index_rows(e, rows_);
  for (const IndexRow& row : rows_) {
    ++index_rows_expected_;
    index_sum_expected_ += row_digest(row.key, row.value);
  }
  if (e.kind == EntryKind::redeem || e.kind == EntryKind::capture) {
    redeemed_by_programme_[e.programme] += e.amount_cents;
  } else if (e.kind == EntryKind::refund) {
    refunded_by_programme_[e.programme] += e.amount_cents;
  }
}

Status Auditor::walk_ledger(const AuditProgress& progress) {
  BUONI_ASSIGN_OR_RETURN(ChainHead head, read_head(store_));
  return store_.scan(Space::ledger, "", "", [&](std::string_view key, std::string_view value) {
    std::uint64_t key_seq = keys::seq_of(key);
    std::uint64_t expected = last_.seq + 1;
    Entry& e = entry_;  // reused: its strings keep their storage
    if (!decode(value, e).ok()) {
      find("decode", key_seq, "", "undecodable ledger entry");
      last_.seq = key_seq;
      return true;
    }
    if (key_seq != expected || e.seq != key_seq) {
      find("chain", key_seq, "",
           "sequence gap or mismatch: expected seq " + std::to_string(expected));
    }
    if (chain_hash_encoded(last_.hash, value) != e.hash) {
      find("chain", e.seq, "", "entry hash does not match its contents and the previous hash");
    }
    auto cp = checkpoint_hashes_.find(e.seq);
    if (cp != checkpoint_hashes_.end() && cp->second != e.hash) {
      find("checkpoint", e.seq, "", "signed checkpoint names another hash for this entry");
    }
    take_entry(e);
    last_ = {e.seq, e.hash};
    ++report.entries;
    if (progress && (report.entries % 65536 == 0)) progress(report.entries, head.seq);
    return true;
  });
}

Status Auditor::check_head() {
  BUONI_ASSIGN_OR_RETURN(ChainHead head, read_head(store_));
  if (head.seq != last_.seq || head.hash != last_.hash) {
    find("chain", head.seq, "head",
         "chain head does not name the last ledger entry (last is " + std::to_string(last_.seq) +
             ")");
  }
  if (last_.seq > 0 &&
      (checkpoint_hashes_.empty() || checkpoint_hashes_.rbegin()->first != last_.seq)) {
    find("checkpoint", last_.seq, "", "the last entry is not covered by a signed checkpoint");
  }
  for (const auto& [seq, hash] : checkpoint_hashes_) {
    if (seq > last_.seq) find("checkpoint", seq, "", "checkpoint past the end of the ledger");
  }
  return Status();
}

Status Auditor::check_cards() {
  std::unordered_set<std::string> seen;
  BUONI_RETURN_IF_ERROR(each<Card>("c/", [&](const Card& c) {
    std::string id = format_card_id(c.id);
    seen.insert(id);
    ++report.cards;
    Cents available = balance(AccountKind::card, id), held = balance(AccountKind::held, id);
    if (c.available_cents != available)
      find("balance", 0, id, "available " + vs(available, c.available_cents));
    if (c.held_cents != held) find("balance", 0, id, "held " + vs(held, c.held_cents));
    if (c.available_cents < 0 || c.held_cents < 0)
      find("negative_balance", 0, id, "stored balance is negative");
    auto it = card_programme_.find(id);
    if (it != card_programme_.end() && it->second != c.programme) {
      find("conservation", 0, id, "ledger puts the card in programme " + it->second);
    }
  }));
  std::vector<std::string> unstored;
  for (const auto& [id, programme] : card_programme_) {
    if (!seen.count(id)) unstored.push_back(id);
  }
  std::sort(unstored.begin(), unstored.end());  // the same report every run
  for (const std::string& id : unstored) {
    find("balance", 0, id, "card in the ledger has no stored record");
  }
  return Status();
}

Status Auditor::check_programmes() {
  std::map<std::string, Cents> sums;  // every programme's accounts sum to zero
  for (const auto& [account, cents] : balances_) {
    bool card_side = account.kind == AccountKind::card || account.kind == AccountKind::held;
    std::string programme =
        card_side ? card_programme_[account.owner] : programme_of_owner(account);
    sums[programme] += cents;
    if (account.kind == AccountKind::held) held_by_programme_[programme] += cents;
  }
  Status failure;
  BUONI_RETURN_IF_ERROR(each<Programme>("p/", [&](const Programme& p) {
    ++report.programmes;
    std::int64_t beneficiaries = 0;
    std::string prefix = keys::beneficiary_prefix(p.id);
    Status s = store_.scan(Space::state, prefix, prefix, [&](std::string_view, std::string_view) {
      ++beneficiaries;
      return true;
    });
    if (!s.ok()) failure = s;
    if (beneficiaries != p.card_count) {
      find("balance", 0, p.id, "cards " + vs(beneficiaries, p.card_count));
    }
    Cents budget_in = -balance(AccountKind::budget, p.id);
    if (budget_in != p.budget_cents)
      find("balance", 0, p.id, "budget " + vs(budget_in, p.budget_cents));
    Cents issued = p.budget_cents - balance(AccountKind::pool, p.id);
    if (issued != p.issued_cents) find("balance", 0, p.id, "issued " + vs(issued, p.issued_cents));
    if (p.issued_cents > p.budget_cents) find("budget", 0, p.id, "issued more than the budget");
    if (held_by_programme_[p.id] != p.held_cents) {
      find("balance", 0, p.id, "held " + vs(held_by_programme_[p.id], p.held_cents));
    }
    Cents expired = balance(AccountKind::expired, p.id);
    if (expired != p.expired_cents)
      find("balance", 0, p.id, "expired " + vs(expired, p.expired_cents));
    if (redeemed_by_programme_[p.id] != p.redeemed_cents) {
      find("balance", 0, p.id, "redeemed " + vs(redeemed_by_programme_[p.id], p.redeemed_cents));
    }
    if (refunded_by_programme_[p.id] != p.refunded_cents) {
      find("balance", 0, p.id, "refunded " + vs(refunded_by_programme_[p.id], p.refunded_cents));
    }
    if (sums[p.id] != 0) {
      find("conservation", 0, p.id, "accounts sum to " + std::to_string(sums[p.id]) + ", not 0");
    }
  }));
  return failure;
}

Status Auditor::check_holds() {
  std::map<std::string, Cents> pending_by_card;
  BUONI_RETURN_IF_ERROR(each<Hold>("h/", [&](const Hold& h) {
    if (h.captured_cents > h.amount_cents) find("capture", 0, h.id, "captured more than held");
    if (h.status == HoldStatus::pending) pending_by_card[format_card_id(h.card)] += h.amount_cents;
  }));
  return each<Card>("c/", [&](const Card& c) {
    auto it = pending_by_card.find(format_card_id(c.id));
    Cents pending = it == pending_by_card.end() ? 0 : it->second;
    if (pending != c.held_cents)
      find("hold", 0, format_card_id(c.id), "pending holds " + vs(pending, c.held_cents));
  });
}

Status Auditor::check_redemptions() {
  std::map<std::string, Cents> refunds;
  BUONI_RETURN_IF_ERROR(
      each<Refund>("f/", [&](const Refund& f) { refunds[f.redemption_id] += f.amount_cents; }));
  return each<Redemption>("r/", [&](const Redemption& r) {
    if (r.refunded_cents > r.amount_cents) find("refund", 0, r.id, "refunded more than redeemed");
    auto it = refunds.find(r.id);
    Cents refunded = it == refunds.end() ? 0 : it->second;
    if (refunded != r.refunded_cents)
      find("refund", 0, r.id, "refunds " + vs(refunded, r.refunded_cents));
  });
}

// Who an index key lists an entry under: a shop id or a card id.
std::string index_object(std::string_view key) {
  constexpr std::size_t seq_bytes = 8;
  if (key.size() < keys::card_entries_root.size() + seq_bytes) return std::string(key);
  std::string_view middle = key.substr(2, key.size() - 2 - seq_bytes);
  if (key.starts_with(keys::merchant_entries_root)) {
    return std::string(middle.substr(0, middle.find('\0')));
  }
  CardId id;
  if (middle.size() != id.bytes.size()) return "?";
  std::copy(middle.begin(), middle.end(), id.bytes.begin());
  return format_card_id(id);
}

// One index row must name an entry that calls for exactly this row.
Status Auditor::check_index_row(std::string_view key, std::string_view value, bool& listed) {
  listed = false;
  ++report.index_rows;
  std::uint64_t seq = keys::index_entry_seq(key);
  BUONI_ASSIGN_OR_RETURN(auto raw, store_.get(Space::ledger, keys::ledger(seq)));
  Entry e;
  if (!raw || !decode(*raw, e).ok()) {
    find("index", seq, index_object(key), "index row names a missing or unreadable entry");
    return Status();
  }
  for (const IndexRow& row : index_rows(e)) {
    if (row.key != key) continue;
    if (row.value != value) {
      find("index", seq, index_object(key), "index row's time differs from the entry's");
    } else {
      listed = true;
    }
    return Status();
  }
  find("index", seq, index_object(key), "index row lists an entry under the wrong shop or card");
  return Status();
}

// SipHash-2-4 of u32(key length) || key || value, keyed for this audit.
std::uint64_t Auditor::row_digest(std::string_view key, std::string_view value) {
  digest_buffer_.clear();
  auto n = static_cast<std::uint32_t>(key.size());
  digest_buffer_.append(reinterpret_cast<const char*>(&n), sizeof n);
  digest_buffer_.append(key);
  digest_buffer_.append(value);
  return siphash24(index_key_, as_bytes(digest_buffer_));
}

// One scan of the index, summing row digests (on the side thread); finish()
// compares them with what the entries call for and only when they differ
// checks the rows one by one to name them.
Status Auditor::scan_index() {
  for (std::string_view root : {keys::merchant_entries_root, keys::card_entries_root}) {
    BUONI_RETURN_IF_ERROR(
        store_.scan(Space::state, root, root, [&](std::string_view k, std::string_view v) {
          ++index_rows_found_;
          index_sum_found_ += row_digest(k, v);
          return true;
        }));
  }
  return Status();
}

Status Auditor::check_index_exactly() {
  report.index_rows = 0;
  std::uint64_t listed_rows = 0;
  Status failure;
  for (std::string_view root : {keys::merchant_entries_root, keys::card_entries_root}) {
    Status s = store_.scan(Space::state, root, root, [&](std::string_view k, std::string_view v) {
      bool listed = false;
      failure = check_index_row(k, v, listed);
      listed_rows += listed ? 1 : 0;
      return failure.ok();
    });
    BUONI_RETURN_IF_ERROR(s);
    BUONI_RETURN_IF_ERROR(failure);
  }
  if (listed_rows == index_rows_expected_) return Status();
  // Some rows are missing: walk the ledger again to name them.
  return find_unlisted();
}

Status Auditor::find_unlisted() {
  Status failure;
  Status s = store_.scan(Space::ledger, "", "", [&](std::string_view, std::string_view value) {
    Entry e;
    if (!decode(value, e).ok()) return true;  // reported by the walk
    for (const IndexRow& row : index_rows(e)) {
      auto got = store_.get(Space::state, row.key);
      if (!got.ok()) {
        failure = got.status();
        return false;
      }
      if (!got->has_value()) {
        find("index", e.seq, index_object(row.key), "entry missing from the ledger index");
      }
    }
    return true;
  });
  BUONI_RETURN_IF_ERROR(s);
  return failure;
}

Status Auditor::run(const AuditProgress& progress) {
  BUONI_RETURN_IF_ERROR(load_checkpoints());
  BUONI_RETURN_IF_ERROR(walk_ledger(progress));
  if (progress) progress(report.entries, report.entries);
  BUONI_RETURN_IF_ERROR(check_head());
  BUONI_RETURN_IF_ERROR(check_cards());
  BUONI_RETURN_IF_ERROR(check_programmes());
  return check_settlements(store_, [this](Finding f) {
    find(std::move(f.check), f.seq, std::move(f.object), std::move(f.detail));
  });
}

Status Auditor::run_side() {
  BUONI_RETURN_IF_ERROR(check_holds());
  BUONI_RETURN_IF_ERROR(check_redemptions());
  return scan_index();
}

// After both threads: the side's findings, then the index comparison.
Status Auditor::finish(Auditor& side) {
  for (Finding& f : side.report.findings) {
    find(std::move(f.check), f.seq, std::move(f.object), std::move(f.detail));
  }
  if (side.index_rows_found_ == index_rows_expected_ &&
      side.index_sum_found_ == index_sum_expected_) {
    report.index_rows = side.index_rows_found_;
    return Status();
  }
  return check_index_exactly();
}

}  // namespace

StatusOr<AuditReport> audit(const Store& store, const std::vector<VerifyKey>& keys,
                            const AuditProgress& progress) {
  ShortHashKey index_key{};  // fresh per audit: stored rows cannot be made to collide
  SystemRandom().fill(index_key);
  Auditor walker(store, keys, index_key), side(store, keys, index_key);
  Status side_status;
  std::thread side_thread([&] { side_status = side.run_side(); });
  Status walk_status = walker.run(progress);
  side_thread.join();
  BUONI_RETURN_IF_ERROR(walk_status);
  BUONI_RETURN_IF_ERROR(side_status);
  BUONI_RETURN_IF_ERROR(walker.finish(side));
  return std::move(walker.report);
}

}  // namespace buoni::engine
