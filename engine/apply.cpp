#include "engine/apply.h"

#include <algorithm>

#include "crypto/hash.h"
#include "crypto/token.h"
#include "engine/limits.h"
#include "engine/session.h"
#include "engine/settle.h"
#include "engine/validate.h"

namespace buoni::engine {

namespace {

Account card_account(const CardId& id) {
  return {AccountKind::card, format_card_id(id)};
}
Account held_account(const CardId& id) {
  return {AccountKind::held, format_card_id(id)};
}
Account payable_account(std::string_view merchant, std::string_view programme) {
  return {AccountKind::payable, std::string(merchant) + ":" + std::string(programme)};
}

Outcome decline(Code code) {
  Outcome o;
  o.code = code;
  return o;
}

bool valid_amount(Cents amount_cents) {
  return amount_cents > 0 && amount_cents <= limits::amount_cents_max;
}

// One command's application. Holds the batch, the clock reading, the caller.
class Machine {
 public:
  Machine(Batch& batch, TimeMs now_ms, Random& random, const Caller& caller)
      : b_(batch), now_ms_(now_ms), today_(day_of(now_ms)), random_(random), caller_(caller) {}

  StatusOr<Outcome> run(const CreateProgramme& c);
  StatusOr<Outcome> run(const CloseProgramme& c);
  StatusOr<Outcome> run(const AddMerchant& c);
  StatusOr<Outcome> run(const IssueCard& c);
  StatusOr<Outcome> run(const LoadCard& c);
  StatusOr<Outcome> run(const BlockCard& c) { return set_blocked(c.card, true); }
  StatusOr<Outcome> run(const UnblockCard& c) { return set_blocked(c.card, false); }
  StatusOr<Outcome> run(const ReplaceCard& c);
  StatusOr<Outcome> run(const Redeem& c);
  StatusOr<Outcome> run(const Authorize& c);
  StatusOr<Outcome> run(const Capture& c);
  StatusOr<Outcome> run(const Void& c);
  StatusOr<Outcome> run(const RefundRedemption& c);
  StatusOr<Outcome> run(const UnlockPin& c);
  StatusOr<Outcome> run(const Settle& c) {
    if (!is_admin()) return decline(Code::forbidden);
    return apply_settle(b_, c, now_ms_);
  }
  StatusOr<Outcome> run(const RotateMerchantKey& c) {
    return apply_rotate_merchant_key(b_, c, caller_, now_ms_);
  }
  StatusOr<Outcome> run(const OpenSession& c) {
    return apply_open_session(b_, c, caller_, now_ms_);
  }
  StatusOr<Outcome> run(const EndSession& c) { return apply_end_session(b_, c, caller_); }

 private:
  struct Spend {  // what a redemption or authorization found valid
    Card card;
    Programme programme;
  };
  StatusOr<Outcome> set_blocked(const CardId& id, bool blocked);
  // Checks a merchant's spend; returns a decline Outcome or fills `spend`.
  StatusOr<std::optional<Outcome>> check_spend(const CardId& id, Cents amount_cents,
                                               const std::optional<Hash32>& pin_hash, Spend& spend);
  // A decline when the PIN is missing, wrong or locked; else nullopt. A wrong
  // PIN is counted durably, a right one clears the count.
  std::optional<Outcome> check_pin(Card& card, const std::optional<Hash32>& pin_hash);
  Code card_usable(const Card& card, const Programme& programme) const;
  StatusOr<std::optional<Outcome>> load_pending_hold(const std::string& hold_id, Hold& hold);
  std::uint64_t entry(EntryKind kind, const std::string& programme, Account from, Account to,
                      Cents amount_cents, const CardId* card, std::string_view ref);
  std::string new_id(std::string_view prefix);
  // A new redemption by the calling merchant, made now (ledger_seq set by the caller).
  Redemption new_redemption(const CardId& card, const std::string& programme,
                            const std::string& reference, Cents amount_cents) {
    Redemption r;
    r.id = new_id("rd_");
    r.card = card;
    r.merchant = caller_.merchant_id;
    r.programme = programme;
    r.reference = reference;
    r.amount_cents = amount_cents;
    r.created_at_ms = now_ms_;
    return r;
  }
  StatusOr<CardId> new_card_id();
  // The answer about `card` after an operation: its balances, this batch's time.
  Outcome card_outcome(std::string id, const Card& card, Cents amount_cents) const {
    Outcome o;
    o.id = std::move(id);
    o.card = format_card_id(card.id);
    o.amount_cents = amount_cents;
    o.balance_cents = card.available_cents;
    o.held_cents = card.held_cents;
    o.time_ms = now_ms_;
    return o;
  }
  bool is_admin() const { return caller_.role == Caller::Role::admin; }
  bool is_merchant() const { return caller_.role == Caller::Role::merchant; }

  StatusOr<Programme> must_programme(const std::string& id);
  void save(const Programme& p) { b_.save(Space::state, keys::programme(p.id), p); }
  void save(const Card& c) { b_.save(Space::state, keys::card(c.id), c); }
  void save(const Hold& h) { b_.save(Space::state, keys::hold(h.id), h); }
  void save(const Redemption& r) { b_.save(Space::state, keys::redemption(r.id), r); }

  Batch& b_;
  TimeMs now_ms_;
  Day today_;
  Random& random_;
  const Caller& caller_;
};

std::uint64_t Machine::entry(EntryKind kind, const std::string& programme, Account from, Account to,
                             Cents amount_cents, const CardId* card, std::string_view ref) {
  Entry e;
  e.time_ms = now_ms_;
  e.kind = kind;
  e.programme = programme;
  e.from = std::move(from);
  e.to = std::move(to);
  e.amount_cents = amount_cents;
  if (card) e.card = format_card_id(*card);
  if (is_merchant()) e.merchant = caller_.merchant_id;
  e.ref = std::string(ref);
  return b_.append(std::move(e));
}

std::string Machine::new_id(std::string_view prefix) {
  CardId raw = CardId::random(random_);  // 80 random bits, Crockford-encoded
  return std::string(prefix) + format_card_id(raw);
}

StatusOr<CardId> Machine::new_card_id() {
  for (int attempt = 0; attempt < 4; ++attempt) {
    CardId id = CardId::random(random_);
    BUONI_ASSIGN_OR_RETURN(auto existing, b_.get(Space::state, keys::card(id)));
    if (!existing) return id;
  }
  BUONI_ASSERT(false && "80-bit card id collided four times: the random source is broken");
  return internal_error("unreachable");
}

StatusOr<Programme> Machine::must_programme(const std::string& id) {
  BUONI_ASSIGN_OR_RETURN(auto p, b_.load<Programme>(Space::state, keys::programme(id)));
  BUONI_ASSERT(p.has_value());  // a card or hold names a programme that must exist
  return std::move(*p);
}

StatusOr<Outcome> Machine::run(const CreateProgramme& c) {
  if (!is_admin()) return decline(Code::forbidden);
  if (!valid_object_id(c.id) || !valid_name(c.name)) return decline(Code::invalid_field);
  if (c.budget_cents <= 0 || c.budget_cents > limits::budget_cents_max) {
    return decline(Code::invalid_amount);
  }
  if (c.max_redemption_cents < 0 || c.max_redemption_cents > limits::amount_cents_max ||
      c.daily_limit_cents < 0 || c.daily_limit_cents > limits::amount_cents_max) {
    return decline(Code::invalid_amount);
  }
  if (c.valid_until_day < c.valid_from_day ||
      c.valid_until_day - c.valid_from_day > limits::programme_days_max ||
      c.valid_until_day > kTokenExpiryDayMax) {  // a card's token carries it in 16 bits
    return decline(Code::invalid_field);
  }
  BUONI_ASSIGN_OR_RETURN(auto existing, b_.get(Space::state, keys::programme(c.id)));
  if (existing) return decline(Code::already_exists);
  Programme p;
  p.id = c.id;
  p.name = c.name;
  p.budget_cents = c.budget_cents;
  p.valid_from_day = c.valid_from_day;
  p.valid_until_day = c.valid_until_day;
  p.max_redemption_cents = c.max_redemption_cents;
  p.daily_limit_cents = c.daily_limit_cents;
  p.require_pin = c.require_pin;
  p.created_at_ms = now_ms_;
  save(p);
  Outcome o;
  o.id = p.id;
  o.amount_cents = p.budget_cents;
  o.time_ms = now_ms_;
  o.ledger_seq = entry(EntryKind::fund, p.id, {AccountKind::budget, p.id},
                       {AccountKind::pool, p.id}, p.budget_cents, nullptr, "");
  return o;
}

StatusOr<Outcome> Machine::run(const AddMerchant& c) {
  if (!is_admin()) return decline(Code::forbidden);
  if (!valid_object_id(c.id) || !valid_name(c.name) || !valid_vat_number(c.vat_number) ||
      c.programmes.empty() || c.programmes.size() > limits::merchant_programmes_max) {
    return decline(Code::invalid_field);
  }
  for (const auto& programme : c.programmes) {
    BUONI_ASSIGN_OR_RETURN(auto p, b_.get(Space::state, keys::programme(programme)));
    if (!p) return decline(Code::not_found);
  }
  BUONI_ASSIGN_OR_RETURN(auto existing, b_.get(Space::state, keys::merchant(c.id)));
  if (existing) return decline(Code::already_exists);
  // A key hash names one shop; taking another shop's would hand it that shop's money.
  BUONI_ASSIGN_OR_RETURN(auto key_owner, b_.get(Space::state, keys::merchant_key(c.api_key_hash)));
  if (key_owner) return decline(Code::already_exists);
  Merchant m;
  m.id = c.id;
  m.name = c.name;
  m.vat_number = c.vat_number.starts_with("IT") ? c.vat_number.substr(2) : c.vat_number;
  m.programmes = c.programmes;
  std::sort(m.programmes.begin(), m.programmes.end());
  m.programmes.erase(std::unique(m.programmes.begin(), m.programmes.end()), m.programmes.end());
  m.api_key_hash = c.api_key_hash;
  m.created_at_ms = now_ms_;
  b_.save(Space::state, keys::merchant(m.id), m);
  b_.put(Space::state, keys::merchant_key(m.api_key_hash), m.id);
  Outcome o;
  o.id = m.id;
  o.time_ms = now_ms_;
  return o;
}

Code Machine::card_usable(const Card& card, const Programme& programme) const {
  if (programme.status == ProgrammeStatus::closed) return Code::programme_closed;
  switch (card.status) {
    case CardStatus::blocked:
      return Code::card_blocked;
    case CardStatus::revoked:
      return Code::card_revoked;
    case CardStatus::expired:
      return Code::card_expired;
    case CardStatus::active:
      break;
  }
  if (today_ < programme.valid_from_day) return Code::card_not_yet_valid;
  if (today_ > programme.valid_until_day) return Code::card_expired;
  return Code::ok;
}

StatusOr<Outcome> Machine::run(const IssueCard& c) {
  if (!is_admin()) return decline(Code::forbidden);
  if (!valid_beneficiary_ref(c.beneficiary_ref)) return decline(Code::invalid_field);
  if (c.amount_cents < 0 || c.amount_cents > limits::amount_cents_max) {
    return decline(Code::invalid_amount);
  }
  BUONI_ASSIGN_OR_RETURN(auto p, b_.load<Programme>(Space::state, keys::programme(c.programme)));
  if (!p) return decline(Code::not_found);
  if (p->status == ProgrammeStatus::closed) return decline(Code::programme_closed);
  if (today_ > p->valid_until_day) return decline(Code::card_expired);
  if (p->require_pin != c.pin_hash.has_value()) return decline(Code::invalid_field);
  std::string index_key = keys::beneficiary(c.programme, c.beneficiary_ref);
  BUONI_ASSIGN_OR_RETURN(auto existing, b_.get(Space::state, index_key));
  if (existing) {
    Outcome o = decline(Code::already_issued);
    CardId id;
    BUONI_ASSERT(existing->size() == id.bytes.size());
    std::copy(existing->begin(), existing->end(), id.bytes.begin());
    o.id = o.card = format_card_id(id);
    return o;
  }
  if (p->card_count >= limits::cards_per_programme_max) return decline(Code::limit_exceeded);
  if (p->issued_cents + c.amount_cents > p->budget_cents) return decline(Code::budget_exceeded);
  BUONI_ASSIGN_OR_RETURN(CardId id, new_card_id());
  Card card;
  card.id = id;
  card.programme = p->id;
  card.beneficiary_ref = c.beneficiary_ref;
  card.available_cents = c.amount_cents;
  card.issued_cents = c.amount_cents;
  card.issued_at_ms = now_ms_;
  card.has_pin = c.pin_hash.has_value();
  if (c.pin_hash) card.pin_hash = *c.pin_hash;
  p->issued_cents += c.amount_cents;
  p->card_count += 1;
  save(card);
  save(*p);
  b_.put(Space::state, std::move(index_key),
         std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()));
  Outcome o;
  o.id = o.card = format_card_id(id);
  o.amount_cents = o.balance_cents = c.amount_cents;
  o.time_ms = now_ms_;
  o.status = card_status_name(card.status);
  if (c.amount_cents > 0) {
    o.ledger_seq = entry(EntryKind::issue, p->id, {AccountKind::pool, p->id}, card_account(id),
                         c.amount_cents, &id, "");
  }
  return o;
}

StatusOr<Outcome> Machine::run(const LoadCard& c) {
  if (!is_admin()) return decline(Code::forbidden);
  if (!valid_amount(c.amount_cents)) return decline(Code::invalid_amount);
  BUONI_ASSIGN_OR_RETURN(auto card, b_.load<Card>(Space::state, keys::card(c.card)));
  if (!card) return decline(Code::unknown_card);
  BUONI_ASSIGN_OR_RETURN(Programme p, must_programme(card->programme));
  Code usable = card_usable(*card, p);
  // An operator may top up a blocked card (blocking stops spending, not aid)
  // and load cards before the programme starts.
  if (usable != Code::ok && usable != Code::card_blocked && usable != Code::card_not_yet_valid) {
    return decline(usable);
  }
  if (p.issued_cents + c.amount_cents > p.budget_cents) return decline(Code::budget_exceeded);
  card->available_cents += c.amount_cents;
  p.issued_cents += c.amount_cents;
  save(*card);
  save(p);
  Outcome o = card_outcome(format_card_id(card->id), *card, c.amount_cents);
  o.ledger_seq = entry(EntryKind::load, p.id, {AccountKind::pool, p.id}, card_account(card->id),
                       c.amount_cents, &card->id, "");
  return o;
}

StatusOr<Outcome> Machine::set_blocked(const CardId& id, bool blocked) {
  if (!is_admin()) return decline(Code::forbidden);
  BUONI_ASSIGN_OR_RETURN(auto card, b_.load<Card>(Space::state, keys::card(id)));
  if (!card) return decline(Code::unknown_card);
  if (card->status == CardStatus::revoked) return decline(Code::card_revoked);
  if (card->status == CardStatus::expired) return decline(Code::card_expired);
  card->status = blocked ? CardStatus::blocked : CardStatus::active;
  save(*card);
  Outcome o = card_outcome(format_card_id(id), *card, 0);
  o.status = card_status_name(card->status);
  return o;
}

StatusOr<Outcome> Machine::run(const ReplaceCard& c) {
  if (!is_admin()) return decline(Code::forbidden);
  BUONI_ASSIGN_OR_RETURN(auto old_card, b_.load<Card>(Space::state, keys::card(c.card)));
  if (!old_card) return decline(Code::unknown_card);
  BUONI_ASSIGN_OR_RETURN(Programme p, must_programme(old_card->programme));
  Code usable = card_usable(*old_card, p);
  // Replacing is what one does with a lost (and so blocked) card, at any
  // time before the programme ends.
  if (usable != Code::ok && usable != Code::card_blocked && usable != Code::card_not_yet_valid) {
    return decline(usable);
  }
  if (p.require_pin != c.pin_hash.has_value()) return decline(Code::invalid_field);
  BUONI_ASSIGN_OR_RETURN(CardId new_id, new_card_id());
  Card fresh;
  fresh.id = new_id;
  fresh.programme = old_card->programme;
  fresh.beneficiary_ref = old_card->beneficiary_ref;
  fresh.available_cents = old_card->available_cents;
  fresh.issued_cents = old_card->available_cents;
  fresh.issued_at_ms = now_ms_;
  fresh.spent_day = old_card->spent_day;  // a replacement does not reset the daily limit
  fresh.spent_today_cents = old_card->spent_today_cents;
  fresh.has_pin = c.pin_hash.has_value();
  if (c.pin_hash) fresh.pin_hash = *c.pin_hash;
  Cents moved_cents = old_card->available_cents;
  old_card->available_cents = 0;
  old_card->status = CardStatus::revoked;
  old_card->has_replacement = true;
  old_card->replaced_by = new_id;
  save(*old_card);
  save(fresh);
  b_.put(Space::state, keys::beneficiary(fresh.programme, fresh.beneficiary_ref),
         std::string(reinterpret_cast<const char*>(new_id.bytes.data()), new_id.bytes.size()));
  Outcome o;
  o.id = o.new_card = format_card_id(new_id);
  o.card = format_card_id(old_card->id);
  o.amount_cents = moved_cents;
  o.balance_cents = fresh.available_cents;
  o.time_ms = now_ms_;
  o.status = card_status_name(fresh.status);
  if (moved_cents > 0) {
    o.ledger_seq = entry(EntryKind::transfer, p.id, card_account(old_card->id),
                         card_account(new_id), moved_cents, &new_id, format_card_id(c.card));
  }
  return o;
}

std::optional<Outcome> Machine::check_pin(Card& card, const std::optional<Hash32>& pin_hash) {
  if (!card.has_pin) return std::nullopt;
  if (card.pin_failures >= limits::pin_failures_max) return decline(Code::pin_locked);
  if (!pin_hash) return decline(Code::pin_required);
  if (!constant_time_equal(*pin_hash, card.pin_hash)) {
    card.pin_failures += 1;
    save(card);  // durable with the batch: a kill does not reset the count
    return decline(card.pin_failures >= limits::pin_failures_max ? Code::pin_locked
                                                                 : Code::wrong_pin);
  }
  if (card.pin_failures > 0) {
    card.pin_failures = 0;
    save(card);  // a right PIN clears the count even if the spend is declined later
  }
  return std::nullopt;
}

StatusOr<std::optional<Outcome>> Machine::check_spend(const CardId& id, Cents amount_cents,
                                                      const std::optional<Hash32>& pin_hash,
                                                      Spend& spend) {
  if (!is_merchant()) return std::optional(decline(Code::forbidden));
  if (!valid_amount(amount_cents)) return std::optional(decline(Code::invalid_amount));
  BUONI_ASSIGN_OR_RETURN(auto merchant,
                         b_.load<Merchant>(Space::state, keys::merchant(caller_.merchant_id)));
  if (!merchant) return std::optional(decline(Code::forbidden));
  BUONI_ASSIGN_OR_RETURN(auto card, b_.load<Card>(Space::state, keys::card(id)));
  if (!card) return std::optional(decline(Code::unknown_card));
  if (!std::binary_search(merchant->programmes.begin(), merchant->programmes.end(),
                          card->programme)) {
    return std::optional(decline(Code::merchant_not_allowed));
  }
  BUONI_ASSIGN_OR_RETURN(Programme p, must_programme(card->programme));
  Code usable = card_usable(*card, p);
  if (usable != Code::ok) return std::optional(decline(usable));
  if (auto pin_declined = check_pin(*card, pin_hash)) return pin_declined;
  if (p.max_redemption_cents > 0 && amount_cents > p.max_redemption_cents) {
    return std::optional(decline(Code::limit_exceeded));
  }
  Cents spent_today_cents = card->spent_day == today_ ? card->spent_today_cents : 0;
  if (p.daily_limit_cents > 0 && spent_today_cents + amount_cents > p.daily_limit_cents) {
    return std::optional(decline(Code::limit_exceeded));
  }
  if (card->available_cents < amount_cents) {
    Outcome o = decline(Code::insufficient_funds);
    o.card = format_card_id(card->id);
    o.balance_cents = card->available_cents;
    o.held_cents = card->held_cents;
    return std::optional(o);
  }
  card->spent_day = today_;
  card->spent_today_cents = spent_today_cents + amount_cents;
  card->available_cents -= amount_cents;
  spend.card = std::move(*card);
  spend.programme = std::move(p);
  return std::optional<Outcome>();
}

StatusOr<Outcome> Machine::run(const Redeem& c) {
  if (!valid_reference(c.reference)) return decline(Code::invalid_field);
  Spend spend;
  BUONI_ASSIGN_OR_RETURN(auto declined, check_spend(c.card, c.amount_cents, c.pin_hash, spend));
  if (declined) return std::move(*declined);
  Card& card = spend.card;
  Redemption r = new_redemption(card.id, card.programme, c.reference, c.amount_cents);
  r.ledger_seq = entry(EntryKind::redeem, card.programme, card_account(card.id),
                       payable_account(r.merchant, r.programme), c.amount_cents, &card.id, r.id);
  spend.programme.redeemed_cents += c.amount_cents;
  save(card);
  save(spend.programme);
  save(r);
  Outcome o = card_outcome(r.id, card, c.amount_cents);
  o.ledger_seq = r.ledger_seq;
  return o;
}

StatusOr<Outcome> Machine::run(const Authorize& c) {
  if (!valid_reference(c.reference)) return decline(Code::invalid_field);
  std::int64_t expires_in_s =
      c.expires_in_s == 0 ? limits::hold_expires_in_s_default : c.expires_in_s;
  if (expires_in_s < 1 || expires_in_s > limits::hold_expires_in_s_max) {
    return decline(Code::invalid_field);
  }
  Spend spend;
  BUONI_ASSIGN_OR_RETURN(auto declined, check_spend(c.card, c.amount_cents, c.pin_hash, spend));
  if (declined) return std::move(*declined);
  Card& card = spend.card;
  card.held_cents += c.amount_cents;
  spend.programme.held_cents += c.amount_cents;
  save(spend.programme);
  Hold h;
  h.id = new_id("au_");
  h.card = card.id;
  h.merchant = caller_.merchant_id;
  h.programme = card.programme;
  h.reference = c.reference;
  h.amount_cents = c.amount_cents;
  h.created_at_ms = now_ms_;
  h.expires_at_ms = now_ms_ + expires_in_s * 1000;
  save(card);
  save(h);
  b_.put(Space::state, keys::hold_expiry(h.expires_at_ms, h.id), "");
  Outcome o = card_outcome(h.id, card, c.amount_cents);
  o.expires_at_ms = h.expires_at_ms;
  o.status = hold_status_name(h.status);
  o.ledger_seq = entry(EntryKind::hold, card.programme, card_account(card.id),
                       held_account(card.id), c.amount_cents, &card.id, h.id);
  return o;
}

}  // namespace

StatusOr<Card> current_card(const Batch& batch, const CardId& id) {
  CardId at = id;
  for (int hops = 0;; ++hops) {
    BUONI_ASSERT(hops < 10'000);  // replacement chains cannot loop
    BUONI_ASSIGN_OR_RETURN(auto card, batch.load<Card>(Space::state, keys::card(at)));
    BUONI_ASSERT(card.has_value());
    if (!card->has_replacement) return std::move(*card);
    at = card->replaced_by;
  }
}

namespace {

// Releases a pending hold: the card's held money leaves `held`, and
// `release_cents` of it goes back to the card in use (the replacement, if the
// card was replaced) as a release entry. The rest was captured by the caller.
// The entry names the hold's shop whoever releases it (the shop by void or
// capture, the writer by expiry or close), so the shop's index lists it.
Status release_hold(Batch& b, Hold& h, Cents release_cents, HoldStatus status, TimeMs now_ms) {
  BUONI_ASSERT(h.status == HoldStatus::pending && status != HoldStatus::pending);
  BUONI_ASSERT(release_cents >= 0 && release_cents <= h.amount_cents);
  BUONI_ASSIGN_OR_RETURN(auto card, b.load<Card>(Space::state, keys::card(h.card)));
  BUONI_ASSERT(card.has_value() && card->held_cents >= h.amount_cents);
  card->held_cents -= h.amount_cents;
  b.save(Space::state, keys::card(card->id), *card);
  BUONI_ASSIGN_OR_RETURN(auto p, b.load<Programme>(Space::state, keys::programme(h.programme)));
  BUONI_ASSERT(p.has_value() && p->held_cents >= h.amount_cents);
  p->held_cents -= h.amount_cents;
  b.save(Space::state, keys::programme(p->id), *p);
  BUONI_ASSIGN_OR_RETURN(Card target, current_card(b, h.card));
  target.available_cents += release_cents;
  b.save(Space::state, keys::card(target.id), target);
  h.status = status;
  b.save(Space::state, keys::hold(h.id), h);
  b.erase(Space::state, keys::hold_expiry(h.expires_at_ms, h.id));
  if (release_cents > 0) {
    Entry e;
    e.time_ms = now_ms;
    e.kind = EntryKind::release;
    e.programme = h.programme;
    e.from = {AccountKind::held, format_card_id(h.card)};
    e.to = {AccountKind::card, format_card_id(target.id)};
    e.amount_cents = release_cents;
    e.card = format_card_id(h.card);
    e.merchant = h.merchant;
    e.ref = h.id;
    b.append(std::move(e));
  }
  return Status();
}

StatusOr<std::optional<Outcome>> Machine::load_pending_hold(const std::string& hold_id,
                                                            Hold& hold) {
  BUONI_ASSIGN_OR_RETURN(auto h, b_.load<Hold>(Space::state, keys::hold(hold_id)));
  if (!h || h->merchant != caller_.merchant_id) return std::optional(decline(Code::not_found));
  if (h->status == HoldStatus::expired) return std::optional(decline(Code::hold_expired));
  if (h->status != HoldStatus::pending) return std::optional(decline(Code::hold_not_pending));
  if (now_ms_ >= h->expires_at_ms) {
    // Lapsed but not yet swept: release it now, and say so.
    BUONI_RETURN_IF_ERROR(release_hold(b_, *h, h->amount_cents, HoldStatus::expired, now_ms_));
    Outcome o = decline(Code::hold_expired);
    o.id = h->id;
    o.status = hold_status_name(h->status);
    o.ledger_seq = b_.head().seq;
    return std::optional(o);
  }
  hold = std::move(*h);
  return std::optional<Outcome>();
}

StatusOr<Outcome> Machine::run(const Capture& c) {
  if (!is_merchant()) return decline(Code::forbidden);
  if (!valid_amount(c.amount_cents)) return decline(Code::invalid_amount);
  Hold h;
  BUONI_ASSIGN_OR_RETURN(auto declined, load_pending_hold(c.hold_id, h));
  if (declined) return std::move(*declined);
  if (c.amount_cents > h.amount_cents) return decline(Code::amount_exceeds_hold);
  Redemption r = new_redemption(h.card, h.programme, h.reference, c.amount_cents);
  r.hold_id = h.id;
  r.ledger_seq = entry(EntryKind::capture, h.programme, held_account(h.card),
                       payable_account(h.merchant, h.programme), c.amount_cents, &h.card, r.id);
  h.captured_cents = c.amount_cents;
  h.redemption_id = r.id;
  BUONI_RETURN_IF_ERROR(
      release_hold(b_, h, h.amount_cents - c.amount_cents, HoldStatus::captured, now_ms_));
  BUONI_ASSIGN_OR_RETURN(Programme p, must_programme(h.programme));
  p.redeemed_cents += c.amount_cents;
  save(p);
  save(r);
  BUONI_ASSIGN_OR_RETURN(Card card, current_card(b_, h.card));
  Outcome o = card_outcome(r.id, card, c.amount_cents);
  o.ledger_seq = r.ledger_seq;
  o.status = hold_status_name(h.status);
  return o;
}

StatusOr<Outcome> Machine::run(const Void& c) {
  if (!is_merchant()) return decline(Code::forbidden);
  Hold h;
  BUONI_ASSIGN_OR_RETURN(auto declined, load_pending_hold(c.hold_id, h));
  if (declined) return std::move(*declined);
  std::uint64_t seq_before = b_.head().seq;
  BUONI_RETURN_IF_ERROR(release_hold(b_, h, h.amount_cents, HoldStatus::voided, now_ms_));
  BUONI_ASSIGN_OR_RETURN(Card card, current_card(b_, h.card));
  Outcome o = card_outcome(h.id, card, h.amount_cents);
  o.status = hold_status_name(h.status);
  o.ledger_seq = b_.head().seq > seq_before ? b_.head().seq : 0;
  return o;
}

StatusOr<Outcome> Machine::run(const UnlockPin& c) {
  if (!is_admin()) return decline(Code::forbidden);
  BUONI_ASSIGN_OR_RETURN(auto card, b_.load<Card>(Space::state, keys::card(c.card)));
  if (!card) return decline(Code::unknown_card);
  if (card->status == CardStatus::revoked) return decline(Code::card_revoked);
  card->pin_failures = 0;
  save(*card);
  Outcome o = card_outcome(format_card_id(card->id), *card, 0);
  o.status = card_status_name(card->status);
  return o;
}

StatusOr<Outcome> Machine::run(const RefundRedemption& c) {
  if (!is_merchant()) return decline(Code::forbidden);
  if (!valid_amount(c.amount_cents)) return decline(Code::invalid_amount);
  BUONI_ASSIGN_OR_RETURN(auto r,
                         b_.load<Redemption>(Space::state, keys::redemption(c.redemption_id)));
  if (!r || r->merchant != caller_.merchant_id) return decline(Code::not_found);
  BUONI_ASSIGN_OR_RETURN(Programme p, must_programme(r->programme));
  if (p.status == ProgrammeStatus::closed) return decline(Code::programme_closed);
  if (r->refunded_cents + c.amount_cents > r->amount_cents) {
    return decline(Code::refund_exceeds_redemption);
  }
  BUONI_ASSIGN_OR_RETURN(Card card, current_card(b_, r->card));
  card.available_cents += c.amount_cents;
  r->refunded_cents += c.amount_cents;
  p.refunded_cents += c.amount_cents;
  Refund f;
  f.id = new_id("rf_");
  f.redemption_id = r->id;
  f.merchant = r->merchant;
  f.amount_cents = c.amount_cents;
  f.created_at_ms = now_ms_;
  // The entry names the card redeemed (the shop's view); the money goes to
  // the card in use, which may be its replacement.
  f.ledger_seq = entry(EntryKind::refund, p.id, payable_account(r->merchant, r->programme),
                       card_account(card.id), c.amount_cents, &r->card, f.id);
  save(card);
  save(*r);
  save(p);
  b_.save(Space::state, keys::refund(f.id), f);
  Outcome o = card_outcome(f.id, card, c.amount_cents);
  o.ledger_seq = f.ledger_seq;
  return o;
}

StatusOr<Outcome> Machine::run(const CloseProgramme& c) {
  if (!is_admin()) return decline(Code::forbidden);
  BUONI_ASSIGN_OR_RETURN(auto p, b_.load<Programme>(Space::state, keys::programme(c.id)));
  if (!p) return decline(Code::not_found);
  if (p->status == ProgrammeStatus::closed) return decline(Code::programme_closed);
  if (today_ <= p->valid_until_day) return decline(Code::programme_not_ended);
  const std::uint64_t seq_before = b_.head().seq;
  // First give back what pending holds keep, then expire what cards have.
  BUONI_ASSIGN_OR_RETURN(auto holds,
                         b_.scan(Space::state, keys::hold_expiry_prefix, limits::close_holds_max));
  if (holds.truncated) return decline(Code::limit_exceeded);
  for (const auto& [key, unused] : holds.rows) {
    std::string hold_id = key.substr(keys::hold_expiry_prefix.size() + 8);
    BUONI_ASSIGN_OR_RETURN(auto h, b_.load<Hold>(Space::state, keys::hold(hold_id)));
    BUONI_ASSERT(h.has_value() && h->status == HoldStatus::pending);
    if (h->programme != p->id) continue;
    BUONI_RETURN_IF_ERROR(release_hold(b_, *h, h->amount_cents, HoldStatus::expired, now_ms_));
  }
  // Releasing changed the programme's held total: read it again.
  BUONI_ASSIGN_OR_RETURN(p, b_.load<Programme>(Space::state, keys::programme(c.id)));
  BUONI_ASSERT(p.has_value() && p->held_cents == 0);
  BUONI_ASSIGN_OR_RETURN(auto cards, b_.scan(Space::state, keys::beneficiary_prefix(p->id),
                                             limits::cards_per_programme_max));
  BUONI_ASSERT(!cards.truncated);  // issuance stops at cards_per_programme_max
  Cents expired_cents = 0;
  for (const auto& [key, raw_id] : cards.rows) {
    CardId id;
    BUONI_ASSERT(raw_id.size() == id.bytes.size());
    std::copy(raw_id.begin(), raw_id.end(), id.bytes.begin());
    BUONI_ASSIGN_OR_RETURN(auto card, b_.load<Card>(Space::state, keys::card(id)));
    BUONI_ASSERT(card.has_value() && card->held_cents == 0);
    if (card->available_cents > 0) {
      entry(EntryKind::expire, p->id, card_account(id), {AccountKind::expired, p->id},
            card->available_cents, &id, "");
      expired_cents += card->available_cents;
      card->available_cents = 0;
    }
    if (card->status != CardStatus::revoked) card->status = CardStatus::expired;
    save(*card);
  }
  p->status = ProgrammeStatus::closed;
  p->expired_cents += expired_cents;
  save(*p);
  Outcome o;
  o.id = p->id;
  o.amount_cents = expired_cents;
  o.time_ms = now_ms_;
  o.ledger_seq = b_.head().seq > seq_before ? b_.head().seq : 0;
  o.status = "closed";
  return o;
}

constexpr std::size_t idempotency_record_hash_bytes = 32;

}  // namespace

StatusOr<Result> apply(Batch& batch, const Request& request, TimeMs now_ms, Random& random) {
  const bool idempotent = !request.idempotency_key.empty();
  if (idempotent && !valid_idempotency_key(request.idempotency_key)) {
    return Result{decline(Code::invalid_field), false};
  }
  std::string record_key;
  Hash32 print{};
  if (idempotent) {
    record_key = keys::idempotency(request.caller.key(), request.idempotency_key);
    print = fingerprint(request.command);
    BUONI_ASSIGN_OR_RETURN(auto record, batch.get(Space::idempotency, record_key));
    if (record) {
      if (record->size() < idempotency_record_hash_bytes)
        return corruption("short idempotency record");
      if (std::string_view(*record).substr(0, idempotency_record_hash_bytes) !=
          std::string_view(reinterpret_cast<const char*>(print.data()), print.size())) {
        return Result{decline(Code::idempotency_conflict), false};
      }
      Result replay;
      replay.replayed = true;
      BUONI_RETURN_IF_ERROR(
          decode(std::string_view(*record).substr(idempotency_record_hash_bytes), replay.outcome));
      return replay;
    }
  }
  Machine machine(batch, now_ms, random, request.caller);
  BUONI_ASSIGN_OR_RETURN(
      Outcome outcome, std::visit([&](const auto& c) { return machine.run(c); }, request.command));
  if (idempotent) {
    std::string record(reinterpret_cast<const char*>(print.data()), print.size());
    record += encode(outcome);
    batch.put(Space::idempotency, std::move(record_key), std::move(record));
  }
  return Result{std::move(outcome), false};
}

StatusOr<std::size_t> expire_holds(Batch& batch, TimeMs now_ms, std::size_t max) {
  BUONI_ASSIGN_OR_RETURN(auto due, batch.scan(Space::state, keys::hold_expiry_prefix, max));
  std::size_t expired = 0;
  for (const auto& [key, unused] : due.rows) {
    std::string_view rest = std::string_view(key).substr(keys::hold_expiry_prefix.size());
    auto expires_at_ms = static_cast<TimeMs>(keys::seq_of(rest.substr(0, 8)));
    if (expires_at_ms > now_ms) break;
    BUONI_ASSIGN_OR_RETURN(auto h,
                           batch.load<Hold>(Space::state, keys::hold(std::string(rest.substr(8)))));
    BUONI_ASSERT(h.has_value() && h->status == HoldStatus::pending);
    BUONI_RETURN_IF_ERROR(release_hold(batch, *h, h->amount_cents, HoldStatus::expired, now_ms));
    ++expired;
  }
  return expired;
}

}  // namespace buoni::engine
