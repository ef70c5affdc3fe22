#include "engine/queries.h"

#include "engine/codec.h"
#include "engine/limits.h"

namespace buoni::engine {

namespace {

template <typename T>
StatusOr<std::optional<T>> find(const Store& store, const std::string& key) {
  BUONI_ASSIGN_OR_RETURN(auto raw, store.get(Space::state, key));
  if (!raw) return std::optional<T>();
  T value;
  BUONI_RETURN_IF_ERROR(decode(*raw, value));
  return std::optional<T>(std::move(value));
}

template <typename T>
StatusOr<std::vector<T>> list(const Store& store, Space space, std::string_view prefix,
                              std::string_view start, std::size_t limit, bool skip_start) {
  std::vector<T> out;
  Status failure;
  Status s = store.scan(space, prefix, start, [&](std::string_view key, std::string_view value) {
    if (skip_start && key == start) return true;
    if (out.size() >= limit) return false;
    T item;
    failure = decode(value, item);
    if (!failure.ok()) return false;
    out.push_back(std::move(item));
    return true;
  });
  BUONI_RETURN_IF_ERROR(s);
  BUONI_RETURN_IF_ERROR(failure);
  return out;
}

}  // namespace

StatusOr<std::optional<Programme>> find_programme(const Store& store, std::string_view id) {
  return find<Programme>(store, keys::programme(id));
}

StatusOr<std::optional<Merchant>> find_merchant(const Store& store, std::string_view id) {
  return find<Merchant>(store, keys::merchant(id));
}

StatusOr<std::optional<Merchant>> find_merchant_by_key_hash(const Store& store,
                                                            const Hash32& key_hash) {
  BUONI_ASSIGN_OR_RETURN(auto id, store.get(Space::state, keys::merchant_key(key_hash)));
  if (!id) return std::optional<Merchant>();
  return find_merchant(store, *id);
}

StatusOr<bool> has_idempotency_record(const Store& store, const Caller& caller,
                                      std::string_view idempotency_key) {
  BUONI_ASSIGN_OR_RETURN(
      auto record, store.get(Space::idempotency, keys::idempotency(caller.key(), idempotency_key)));
  return record.has_value();
}

StatusOr<std::optional<Card>> find_card(const Store& store, const CardId& id) {
  return find<Card>(store, keys::card(id));
}

StatusOr<std::optional<CardId>> find_beneficiary_card(const Store& store,
                                                      std::string_view programme,
                                                      std::string_view ref) {
  BUONI_ASSIGN_OR_RETURN(auto raw, store.get(Space::state, keys::beneficiary(programme, ref)));
  if (!raw) return std::optional<CardId>();
  CardId id;
  if (raw->size() != id.bytes.size()) return corruption("bad beneficiary index entry");
  std::copy(raw->begin(), raw->end(), id.bytes.begin());
  return std::optional<CardId>(id);
}

StatusOr<std::optional<Redemption>> find_redemption(const Store& store, std::string_view id) {
  return find<Redemption>(store, keys::redemption(id));
}

StatusOr<std::optional<Hold>> find_hold(const Store& store, std::string_view id) {
  return find<Hold>(store, keys::hold(id));
}

StatusOr<std::optional<Settlement>> find_settlement(const Store& store, std::string_view id) {
  return find<Settlement>(store, keys::settlement(id));
}

StatusOr<std::map<std::string, Merchant>> settlement_merchants(const Store& store,
                                                               const Settlement& settlement) {
  std::map<std::string, Merchant> shops;
  for (const SettlementLine& line : settlement.lines) {
    if (shops.count(line.merchant)) continue;
    BUONI_ASSIGN_OR_RETURN(auto m, find_merchant(store, line.merchant));
    if (!m)
      return corruption("settlement " + settlement.id + " names unknown shop " + line.merchant);
    shops.emplace(line.merchant, std::move(*m));
  }
  return shops;
}

StatusOr<std::vector<Merchant>> list_merchants(const Store& store, std::string_view after,
                                               std::size_t limit) {
  std::string start = keys::merchant(after);
  return list<Merchant>(store, Space::state, "m/", start, limit, !after.empty());
}

StatusOr<std::vector<Programme>> list_programmes(const Store& store, std::size_t limit) {
  return list<Programme>(store, Space::state, "p/", "p/", limit, false);
}

StatusOr<std::vector<Entry>> read_entries(const Store& store, std::uint64_t from,
                                          std::size_t limit) {
  return list<Entry>(store, Space::ledger, "", keys::ledger(from), limit, false);
}

namespace {

// The entries an index names, in the order given.
StatusOr<std::vector<Entry>> entries_at(const Store& store,
                                        const std::vector<std::uint64_t>& seqs) {
  std::vector<Entry> out;
  out.reserve(seqs.size());
  for (std::uint64_t seq : seqs) {
    BUONI_ASSIGN_OR_RETURN(auto raw, store.get(Space::ledger, keys::ledger(seq)));
    if (!raw) return corruption("a ledger index names missing entry " + std::to_string(seq));
    Entry e;
    BUONI_RETURN_IF_ERROR(decode(*raw, e));
    if (e.seq != seq)
      return corruption("ledger entry " + std::to_string(seq) + " names another seq");
    out.push_back(std::move(e));
  }
  return out;
}

Status check_limit(std::size_t limit) {
  if (limit < 1 || limit > limits::transactions_page_max) {
    return invalid_argument("limit must be 1.." + std::to_string(limits::transactions_page_max));
  }
  return Status();
}

}  // namespace

StatusOr<EntryPage> merchant_entries(const Store& store, std::string_view merchant, TimeMs from_ms,
                                     TimeMs to_ms, std::uint64_t after_seq, std::size_t limit) {
  BUONI_RETURN_IF_ERROR(check_limit(limit));
  EntryPage page;
  if (after_seq == UINT64_MAX || from_ms >= to_ms) return page;
  const std::string prefix = keys::merchant_entries_prefix(merchant);
  const std::string start = keys::merchant_entry(merchant, after_seq + 1);
  std::vector<std::uint64_t> seqs;
  std::size_t scanned = 0;
  std::uint64_t last_seq = 0;  // the last row taken or passed over
  bool more = false;
  Status failure;
  Status s =
      store.scan(Space::state, prefix, start, [&](std::string_view key, std::string_view value) {
        if (scanned == limits::entry_index_scan_rows_max) {
          more = true;
          return false;
        }
        TimeMs time_ms = 0;
        failure = decode_index_value(value, time_ms);
        if (!failure.ok()) return false;
        const bool in_window = time_ms >= from_ms && time_ms < to_ms;
        if (in_window && seqs.size() == limit) {
          more = true;
          return false;
        }
        ++scanned;
        last_seq = keys::index_entry_seq(key);
        if (in_window) seqs.push_back(last_seq);
        return true;
      });
  BUONI_RETURN_IF_ERROR(s);
  BUONI_RETURN_IF_ERROR(failure);
  BUONI_ASSIGN_OR_RETURN(page.entries, entries_at(store, seqs));
  if (more) page.next_after = last_seq;
  return page;
}

StatusOr<std::vector<Entry>> card_entries(const Store& store, const CardId& card,
                                          std::size_t limit) {
  BUONI_RETURN_IF_ERROR(check_limit(limit));
  const std::string prefix = keys::card_entries_prefix(card);
  std::vector<std::uint64_t> seqs;
  Status s = store.scan(Space::state, prefix, prefix, [&](std::string_view key, std::string_view) {
    if (seqs.size() == limit) return false;
    seqs.push_back(keys::index_entry_seq(key));
    return true;
  });
  BUONI_RETURN_IF_ERROR(s);
  return entries_at(store, seqs);
}

}  // namespace buoni::engine
