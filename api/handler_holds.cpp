// GET /v1/authorizations: a shop's pending holds (home-delivery orders not
// yet captured or voided), from its ledger index of the last week.
#include <limits>

#include "api/handler_internal.h"
#include "crypto/card_number.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/queries.h"

namespace buoni::api::detail {

namespace {

json::object hold_json(const engine::Hold& h) {
  return {{"id", h.id},
          {"card_number", mask_card_number(h.card)},
          {"amount_cents", h.amount_cents},
          {"currency", "EUR"},
          {"reference", h.reference},
          {"created_at", engine::format_time(h.created_at_ms)},
          {"expires_at", engine::format_time(h.expires_at_ms)}};
}

}  // namespace

Response get_authorizations(Call& call) {
  const engine::TimeMs now_ms = call.ctx.clock.now_ms();
  // A hold lives at most hold_expires_in_s_max, so every pending one was
  // placed in this window (an hour more for a clock that stepped back).
  const engine::TimeMs from_ms = now_ms - (limits::hold_expires_in_s_max + 3600) * 1000;
  json::array out;
  std::uint64_t after_seq = 0;
  std::size_t entries_read = 0;
  do {
    auto page = engine::merchant_entries(call.ctx.store, call.caller.merchant_id, from_ms,
                                         std::numeric_limits<engine::TimeMs>::max(), after_seq,
                                         limits::transactions_page_max);
    if (!page.ok()) fail_status(page.status());
    for (const engine::Entry& e : page->entries) {
      if (e.kind != engine::EntryKind::hold || e.merchant != call.caller.merchant_id) continue;
      auto h = engine::find_hold(call.ctx.store, e.ref);
      if (!h.ok()) fail_status(h.status());
      if (!h->has_value()) continue;
      const engine::Hold& hold = **h;
      if (hold.status != engine::HoldStatus::pending || hold.expires_at_ms <= now_ms) continue;
      out.push_back(hold_json(hold));
      if (out.size() == limits::holds_list_max) break;
    }
    entries_read += page->entries.size();
    after_seq = page->next_after;
  } while (after_seq != 0 && out.size() < limits::holds_list_max &&
           entries_read < limits::entry_index_scan_rows_max);
  return json_response(call.req, http::status::ok,
                       json::object{{"authorizations", std::move(out)}});
}

}  // namespace buoni::api::detail
