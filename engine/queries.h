// Queries: reads of committed state, for the CLI, the HTTP API and audits.
// They read the Store directly (never the writer's batch), so they see
// exactly what has been acknowledged. Thread-safe: any thread, any time.
// A missing object is nullopt; an unreadable store or record is a Status.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "engine/command.h"
#include "engine/model.h"
#include "engine/store.h"

namespace buoni::engine {

[[nodiscard]] StatusOr<std::optional<Programme>> find_programme(const Store& store,
                                                                std::string_view id);
[[nodiscard]] StatusOr<std::optional<Merchant>> find_merchant(const Store& store,
                                                              std::string_view id);
[[nodiscard]] StatusOr<std::optional<Merchant>> find_merchant_by_key_hash(const Store& store,
                                                                          const Hash32& key_hash);
[[nodiscard]] StatusOr<std::optional<Card>> find_card(const Store& store, const CardId& id);
// The card a beneficiary now holds in a programme (after replacements: the new one).
[[nodiscard]] StatusOr<std::optional<CardId>> find_beneficiary_card(const Store& store,
                                                                    std::string_view programme,
                                                                    std::string_view ref);
[[nodiscard]] StatusOr<std::optional<Redemption>> find_redemption(const Store& store,
                                                                  std::string_view id);
[[nodiscard]] StatusOr<std::optional<Hold>> find_hold(const Store& store, std::string_view id);
// True when `caller` has a stored answer under `idempotency_key` (a retry).
[[nodiscard]] StatusOr<bool> has_idempotency_record(const Store& store, const Caller& caller,
                                                    std::string_view idempotency_key);
// Merchants in id order, starting after `after` (empty: from the first), at most `limit`.
[[nodiscard]] StatusOr<std::vector<Merchant>> list_merchants(const Store& store,
                                                             std::string_view after,
                                                             std::size_t limit);
[[nodiscard]] StatusOr<std::vector<Programme>> list_programmes(const Store& store,
                                                               std::size_t limit);
// A settlement by id (engine/settle.h), e.g. "2026-04".
[[nodiscard]] StatusOr<std::optional<Settlement>> find_settlement(const Store& store,
                                                                  std::string_view id);
// The shops a settlement's lines name, by id (a line naming a shop that is
// not stored is corruption).
[[nodiscard]] StatusOr<std::map<std::string, Merchant>> settlement_merchants(
    const Store& store, const Settlement& settlement);
// The ledger entries from seq `from` on, at most `limit`.
[[nodiscard]] StatusOr<std::vector<Entry>> read_entries(const Store& store, std::uint64_t from,
                                                        std::size_t limit);

// ---- the ledger indexes (engine/codec.h "e/" and "t/") ----
// Time windows are [from_ms, to_ms); entries keep their own time, which is
// the writer's clock reading and may step back, so a window filters entries
// in seq order rather than bounding a range.
struct EntryPage {
  std::vector<Entry> entries;    // in seq order
  std::uint64_t next_after = 0;  // the after_seq of the next page; 0: no more
};
// Shop `merchant`'s entries with seq > `after_seq` in the window, at most
// `limit` (1..limits::transactions_page_max, else invalid_argument). A page
// reads at most limits::entry_index_scan_rows_max index rows: it can end
// short, even empty, with next_after set; next_after is 0 only when no later
// entry of the shop is in the window.
[[nodiscard]] StatusOr<EntryPage> merchant_entries(const Store& store, std::string_view merchant,
                                                   TimeMs from_ms, TimeMs to_ms,
                                                   std::uint64_t after_seq, std::size_t limit);
// The last `limit` (1..limits::transactions_page_max) entries naming `card`,
// newest first. A card's own entries only: a replacement's list starts with
// the transfer from the old card (and holds or refunds of the old card that
// pay the new one are listed under both).
[[nodiscard]] StatusOr<std::vector<Entry>> card_entries(const Store& store, const CardId& card,
                                                        std::size_t limit);

}  // namespace buoni::engine
