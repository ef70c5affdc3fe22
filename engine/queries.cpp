#include "engine/queries.h"

#include "engine/codec.h"

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

}  // namespace buoni::engine
