// Queries: reads of committed state, for the CLI, the HTTP API and audits.
// They read the Store directly (never the writer's batch), so they see
// exactly what has been acknowledged. Thread-safe: any thread, any time.
// A missing object is nullopt; an unreadable store or record is a Status.
#pragma once

#include <optional>
#include <vector>

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
// Merchants in id order, starting after `after` (empty: from the first), at most `limit`.
[[nodiscard]] StatusOr<std::vector<Merchant>> list_merchants(const Store& store,
                                                             std::string_view after,
                                                             std::size_t limit);
[[nodiscard]] StatusOr<std::vector<Programme>> list_programmes(const Store& store,
                                                               std::size_t limit);
// The ledger entries from seq `from` on, at most `limit`.
[[nodiscard]] StatusOr<std::vector<Entry>> read_entries(const Store& store, std::uint64_t from,
                                                        std::size_t limit);

}  // namespace buoni::engine
