#include "engine/batch.h"

#include "engine/ledger.h"

namespace buoni::engine {

StatusOr<std::optional<std::string>> Batch::get(Space space, std::string_view key) const {
  const auto& overlay = overlay_[static_cast<int>(space)];
  auto it = overlay.find(key);
  if (it != overlay.end()) return it->second;
  if (const Overlay* below = below_overlay(space)) {
    auto b = below->find(key);
    if (b != below->end()) return b->second;
  }
  auto& reads = store_reads_[static_cast<int>(space)];
  auto read = reads.find(key);
  if (read != reads.end()) return read->second;
  auto value = store_.get(space, key);
  if (value.ok()) reads.emplace(std::string(key), *value);
  return value;
}

void Batch::put(Space space, std::string key, std::string value) {
  overlay_[static_cast<int>(space)].insert_or_assign(std::move(key), std::move(value));
}

void Batch::erase(Space space, std::string key) {
  overlay_[static_cast<int>(space)].insert_or_assign(std::move(key), std::nullopt);
}

StatusOr<Batch::Rows> Batch::scan(Space space, std::string_view prefix, std::string_view start,
                                  std::size_t max_rows) const {
  std::map<std::string, std::string, std::less<>> merged;
  bool store_truncated = false;
  Status s = store_.scan(space, prefix, start, [&](std::string_view k, std::string_view v) {
    if (merged.size() >= max_rows) {
      store_truncated = true;
      return false;
    }
    merged.emplace(std::string(k), std::string(v));
    return true;
  });
  BUONI_RETURN_IF_ERROR(s);
  // Keys past the last committed key read may hide further committed keys
  // when the store scan stopped early; leave them to the next call.
  std::optional<std::string> last_store_key;
  if (store_truncated && !merged.empty()) last_store_key = merged.rbegin()->first;
  const std::string_view from = start > prefix ? start : prefix;
  // The batch below first, then this one: later changes win.
  for (const Overlay* overlay : {below_overlay(space), &overlay_[static_cast<int>(space)]}) {
    if (!overlay) continue;
    for (auto it = overlay->lower_bound(from);
         it != overlay->end() && std::string_view(it->first).starts_with(prefix); ++it) {
      if (last_store_key && it->first > *last_store_key) break;
      if (it->second) {
        merged.insert_or_assign(it->first, *it->second);
      } else {
        merged.erase(it->first);
      }
    }
  }
  Rows out;
  out.truncated = store_truncated || merged.size() > max_rows;
  for (auto& row : merged) {
    if (out.rows.size() == max_rows) break;
    out.rows.emplace_back(row.first, std::move(row.second));
  }
  return out;
}

std::uint64_t Batch::append(Entry entry) {
  BUONI_ASSERT(entry.amount_cents > 0);
  BUONI_ASSERT(entry.from != entry.to);
  entry.seq = head_.seq + 1;
  entry.hash = chain_hash(head_.hash, entry);
  head_.seq = entry.seq;
  head_.hash = entry.hash;
  for (IndexRow& row : index_rows(entry))
    put(Space::state, std::move(row.key), std::move(row.value));
  put(Space::ledger, keys::ledger(entry.seq), encode(entry));
  return entry.seq;
}

WriteSet Batch::write_set() const {
  WriteSet set;
  for (int s = 0; s < space_count; ++s) {
    for (const auto& [key, value] : overlay_[s]) {
      set.ops.push_back({static_cast<Space>(s), key, value});
    }
  }
  return set;
}

}  // namespace buoni::engine
