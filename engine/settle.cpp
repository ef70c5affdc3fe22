#include "engine/settle.h"

#include <map>
#include <utility>

#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/validate.h"

namespace buoni::engine {

std::string settlement_period_id(Day from_day, Day to_day) {
  const std::string from = format_day(from_day), to = format_day(to_day);
  const bool whole_month = from.ends_with("-01") && format_day(to_day + 1).ends_with("-01") &&
                           from.substr(0, 7) == to.substr(0, 7);
  return whole_month ? from.substr(0, 7) : from + ".." + to;
}

bool settles(EntryKind kind) {
  return kind == EntryKind::redeem || kind == EntryKind::capture || kind == EntryKind::refund;
}

namespace {

using LineKey = std::pair<std::string, std::string>;  // merchant, programme

Outcome decline(Code code) {
  Outcome o;
  o.code = code;
  return o;
}

// The payable account a paying entry moves money to (sale) or from (refund).
const Account& payable_of(const Entry& e) {
  return e.kind == EntryKind::refund ? e.from : e.to;
}

std::string merchant_of(const Account& payable) {
  return payable.owner.substr(0, payable.owner.find(':'));
}

void add_to_line(SettlementLine& line, const Entry& e) {
  if (line.count == 0) {
    line.first_seq = e.seq;
    line.first_time_ms = e.time_ms;
  }
  line.last_seq = e.seq;
  line.last_time_ms = e.time_ms;
  line.count += 1;
  if (e.kind == EntryKind::refund) {
    line.refunded_cents += e.amount_cents;
  } else {
    line.redeemed_cents += e.amount_cents;
  }
}

// What one settlement pays, gathered before anything is written.
struct Collected {
  std::map<LineKey, SettlementLine> lines;
  std::vector<std::uint64_t> marks;             // entries paid now
  std::map<std::string, std::uint64_t> floors;  // shops whose settled floor moved
  std::size_t rows_read = 0;
  bool over_limit = false;
};

StatusOr<std::uint64_t> read_floor(const Batch& b, const std::string& merchant) {
  BUONI_ASSIGN_OR_RETURN(auto raw, b.get(Space::state, keys::settled_floor(merchant)));
  std::uint64_t seq = 0;
  if (raw) BUONI_RETURN_IF_ERROR(decode_settled_floor(*raw, seq));
  return seq;
}

// Reads shop `merchant`'s index from its floor on: entries in [from_ms,
// to_ms) not yet paid join `out`; the floor moves over every row that is
// paid (before or now) or pays nothing, up to the first unpaid one outside.
Status collect_merchant(const Batch& b, const std::string& merchant, TimeMs from_ms, TimeMs to_ms,
                        Collected& out) {
  BUONI_ASSIGN_OR_RETURN(const std::uint64_t floor, read_floor(b, merchant));
  const std::size_t budget = limits::settle_index_rows_max - out.rows_read;
  BUONI_ASSIGN_OR_RETURN(auto rows, b.scan(Space::state, keys::merchant_entries_prefix(merchant),
                                           keys::merchant_entry(merchant, floor + 1), budget));
  out.rows_read += rows.rows.size();
  if (rows.truncated) {
    out.over_limit = true;
    return Status();
  }
  bool advancing = true;
  std::uint64_t new_floor = floor;
  for (const auto& [key, value] : rows.rows) {
    const std::uint64_t seq = keys::index_entry_seq(key);
    TimeMs time_ms = 0;
    BUONI_RETURN_IF_ERROR(decode_index_value(value, time_ms));
    const bool in_window = time_ms >= from_ms && time_ms < to_ms;
    if (!in_window && !advancing) continue;
    BUONI_ASSIGN_OR_RETURN(auto e, b.load<Entry>(Space::ledger, keys::ledger(seq)));
    BUONI_ASSERT(e.has_value() && e->seq == seq);  // the index names committed entries
    bool unpaid = settles(e->kind) && merchant_of(payable_of(*e)) == merchant;
    if (unpaid) {
      BUONI_ASSIGN_OR_RETURN(auto mark, b.get(Space::state, keys::settled_entry(seq)));
      unpaid = !mark.has_value();
    }
    if (unpaid && in_window) {
      SettlementLine& line = out.lines[{merchant, e->programme}];
      line.merchant = merchant;
      line.programme = e->programme;
      add_to_line(line, *e);
      out.marks.push_back(seq);
      if (out.marks.size() > limits::settle_entries_max) out.over_limit = true;
    } else if (unpaid) {
      advancing = false;  // paid by a later settlement: the floor stops before it
    }
    if (advancing) new_floor = seq;
  }
  if (new_floor != floor) out.floors[merchant] = new_floor;
  return Status();
}

StatusOr<std::optional<Outcome>> check_settle(const Batch& b, const Settle& c, TimeMs now_ms) {
  if (!valid_object_id(c.period_id) || c.from_day > c.to_day ||
      c.to_day - c.from_day >= limits::settle_period_days_max || c.to_day >= day_of(now_ms)) {
    return std::optional(decline(Code::invalid_field));
  }
  BUONI_ASSIGN_OR_RETURN(auto stored,
                         b.load<Settlement>(Space::state, keys::settlement(c.period_id)));
  if (!stored) return std::optional<Outcome>();
  if (stored->from_day != c.from_day || stored->to_day != c.to_day) {
    return std::optional(decline(Code::already_exists));
  }
  Outcome o;
  o.id = stored->id;
  o.time_ms = stored->created_at_ms;
  for (const SettlementLine& line : stored->lines) {
    o.amount_cents += line.net_cents;
    o.ledger_seq = std::max(o.ledger_seq, line.ledger_seq);
  }
  o.status = "already_settled";
  return std::optional(o);
}

// Writes the settle entry of one line (none when its net is 0).
void write_line(Batch& b, SettlementLine& line, const std::string& period_id, TimeMs now_ms) {
  line.net_cents = line.redeemed_cents - line.refunded_cents;
  if (line.net_cents == 0) return;
  const std::string owner = line.merchant + ":" + line.programme;
  Account payable{AccountKind::payable, owner}, settled{AccountKind::settled, owner};
  Entry e;
  e.time_ms = now_ms;
  e.kind = EntryKind::settle;
  e.programme = line.programme;
  e.from = line.net_cents > 0 ? payable : settled;
  e.to = line.net_cents > 0 ? settled : payable;
  e.amount_cents = line.net_cents > 0 ? line.net_cents : -line.net_cents;
  e.merchant = line.merchant;
  e.ref = period_id;
  line.ledger_seq = b.append(std::move(e));
}

}  // namespace

StatusOr<Outcome> apply_settle(Batch& b, const Settle& c, TimeMs now_ms) {
  BUONI_ASSIGN_OR_RETURN(auto answered, check_settle(b, c, now_ms));
  if (answered) return std::move(*answered);
  BUONI_ASSIGN_OR_RETURN(auto merchants, b.scan(Space::state, "m/", limits::settle_merchants_max));
  if (merchants.truncated) return decline(Code::limit_exceeded);
  const TimeMs from_ms = c.from_day * ms_per_day, to_ms = (c.to_day + 1) * ms_per_day;
  Collected got;
  for (const auto& [key, unused] : merchants.rows) {
    BUONI_RETURN_IF_ERROR(collect_merchant(b, key.substr(2), from_ms, to_ms, got));
    if (got.over_limit) return decline(Code::limit_exceeded);
  }
  // Nothing was written above: a decline leaves the batch as it was.
  Settlement s;
  s.id = c.period_id;
  s.from_day = c.from_day;
  s.to_day = c.to_day;
  s.created_at_ms = now_ms;
  Outcome o;
  for (auto& [unused, line] : got.lines) {
    write_line(b, line, c.period_id, now_ms);
    o.amount_cents += line.net_cents;
    o.ledger_seq = std::max(o.ledger_seq, line.ledger_seq);
    s.lines.push_back(std::move(line));
  }
  const std::string mark = encode_settled_mark(c.period_id);
  for (std::uint64_t seq : got.marks) b.put(Space::state, keys::settled_entry(seq), mark);
  for (const auto& [merchant, seq] : got.floors) {
    b.put(Space::state, keys::settled_floor(merchant), encode_settled_floor(seq));
  }
  b.save(Space::state, keys::settlement(s.id), s);
  o.id = s.id;
  o.time_ms = now_ms;
  o.status = "settled";
  return o;
}

}  // namespace buoni::engine

namespace buoni::engine {

namespace {

struct Paid {  // what the marks of one settlement add up to, per line
  Cents redeemed_cents = 0, refunded_cents = 0;
  std::uint64_t count = 0;
};
using PaidBySettlement = std::map<std::string, std::map<LineKey, Paid>>;

StatusOr<std::optional<Entry>> read_entry(const Store& store, std::uint64_t seq) {
  BUONI_ASSIGN_OR_RETURN(auto raw, store.get(Space::ledger, keys::ledger(seq)));
  if (!raw) return std::optional<Entry>();
  Entry e;
  if (!decode(*raw, e).ok()) return std::optional<Entry>();
  return std::optional<Entry>(std::move(e));
}

Status sum_marks(const Store& store, const std::function<void(Finding)>& found,
                 PaidBySettlement& paid) {
  Status failure;
  Status s = store.scan(Space::state, keys::settled_entry_root, keys::settled_entry_root,
                        [&](std::string_view key, std::string_view value) {
                          const std::uint64_t seq = keys::seq_of(key.substr(2));
                          std::string id;
                          if (!decode_settled_mark(value, id).ok()) {
                            found({"settlement", seq, "", "undecodable settled mark"});
                            return true;
                          }
                          auto e = read_entry(store, seq);
                          if (!e.ok()) {
                            failure = e.status();
                            return false;
                          }
                          if (!e->has_value() || !settles((*e)->kind)) {
                            found({"settlement", seq, id, "marked paid but pays nothing"});
                            return true;
                          }
                          const Entry& entry = **e;
                          Paid& p = paid[id][{merchant_of(payable_of(entry)), entry.programme}];
                          p.count += 1;
                          (entry.kind == EntryKind::refund ? p.refunded_cents : p.redeemed_cents) +=
                              entry.amount_cents;
                          return true;
                        });
  BUONI_RETURN_IF_ERROR(s);
  return failure;
}

// One line against its settle entry and the marks that name its settlement.
Status check_line(const Store& store, const Settlement& s, const SettlementLine& line,
                  const Paid& paid, const std::function<void(Finding)>& found) {
  const std::string object = s.id + "/" + line.merchant + "/" + line.programme;
  if (paid.count != line.count || paid.redeemed_cents != line.redeemed_cents ||
      paid.refunded_cents != line.refunded_cents ||
      line.net_cents != line.redeemed_cents - line.refunded_cents) {
    found({"settlement", line.ledger_seq, object,
           "line does not match the entries marked paid (" + std::to_string(paid.count) +
               " entries, " + std::to_string(paid.redeemed_cents - paid.refunded_cents) +
               " cents)"});
  }
  if (line.net_cents == 0) {
    if (line.ledger_seq != 0)
      found({"settlement", line.ledger_seq, object, "zero line names an entry"});
    return Status();
  }
  BUONI_ASSIGN_OR_RETURN(auto e, read_entry(store, line.ledger_seq));
  const std::string owner = line.merchant + ":" + line.programme;
  const Account payable{AccountKind::payable, owner}, settled{AccountKind::settled, owner};
  const bool positive = line.net_cents > 0;
  if (!e || e->kind != EntryKind::settle || e->ref != s.id ||
      e->from != (positive ? payable : settled) || e->to != (positive ? settled : payable) ||
      e->amount_cents != (positive ? line.net_cents : -line.net_cents)) {
    found({"settlement", line.ledger_seq, object, "settle entry does not match the line"});
  }
  return Status();
}

}  // namespace

Status check_settlements(const Store& store, const std::function<void(Finding)>& found) {
  PaidBySettlement paid;
  BUONI_RETURN_IF_ERROR(sum_marks(store, found, paid));
  std::vector<Settlement> settlements;
  Status s =
      store.scan(Space::state, keys::settlement_root, keys::settlement_root,
                 [&](std::string_view key, std::string_view value) {
                   Settlement one;
                   if (!decode(value, one).ok()) {
                     found({"settlement", 0, std::string(key.substr(2)), "undecodable settlement"});
                   } else {
                     settlements.push_back(std::move(one));
                   }
                   return true;
                 });
  BUONI_RETURN_IF_ERROR(s);
  for (const Settlement& one : settlements) {
    auto& by_line = paid[one.id];
    for (const SettlementLine& line : one.lines) {
      auto it = by_line.find({line.merchant, line.programme});
      BUONI_RETURN_IF_ERROR(
          check_line(store, one, line, it == by_line.end() ? Paid{} : it->second, found));
      if (it != by_line.end()) by_line.erase(it);
    }
    for (const auto& [line_key, unused] : by_line) {
      found({"settlement", 0, one.id + "/" + line_key.first + "/" + line_key.second,
             "entries marked paid by a settlement that has no line for them"});
    }
    paid.erase(one.id);
  }
  for (const auto& [id, unused] : paid) {
    found({"settlement", 0, id, "entries marked paid by a settlement that does not exist"});
  }
  return Status();
}

}  // namespace buoni::engine
