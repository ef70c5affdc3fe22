#include "engine/model.h"

namespace buoni::engine {

std::string_view card_status_name(CardStatus status) {
  switch (status) {
    case CardStatus::active:
      return "active";
    case CardStatus::blocked:
      return "blocked";
    case CardStatus::revoked:
      return "revoked";
    case CardStatus::expired:
      return "expired";
  }
  return "unknown";
}

std::string_view hold_status_name(HoldStatus status) {
  switch (status) {
    case HoldStatus::pending:
      return "pending";
    case HoldStatus::captured:
      return "captured";
    case HoldStatus::voided:
      return "voided";
    case HoldStatus::expired:
      return "expired";
  }
  return "unknown";
}

std::string_view entry_kind_name(EntryKind kind) {
  switch (kind) {
    case EntryKind::fund:
      return "fund";
    case EntryKind::issue:
      return "issue";
    case EntryKind::load:
      return "load";
    case EntryKind::redeem:
      return "redeem";
    case EntryKind::hold:
      return "hold";
    case EntryKind::capture:
      return "capture";
    case EntryKind::release:
      return "release";
    case EntryKind::refund:
      return "refund";
    case EntryKind::transfer:
      return "transfer";
    case EntryKind::expire:
      return "expire";
    case EntryKind::settle:
      return "settle";
  }
  return "unknown";
}

std::string_view account_kind_name(AccountKind kind) {
  static constexpr std::string_view names[] = {"budget",  "pool",    "card",   "held",
                                               "payable", "settled", "expired"};
  return names[static_cast<int>(kind)];
}

std::string Account::to_string() const {
  return std::string(account_kind_name(kind)) + ":" + owner;
}

bool Account::text_equals(std::string_view text) const {
  std::string_view name = account_kind_name(kind);
  return text.size() == name.size() + 1 + owner.size() && text.starts_with(name) &&
         text[name.size()] == ':' && text.ends_with(owner);
}

}  // namespace buoni::engine
