// The shared rig of the fault tests: the contract is in tests/fault_harness.h.
#include "fault_harness.h"

#include <algorithm>
#include <utility>

#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "engine/audit.h"
#include "engine/codec.h"

namespace buoni::test {

namespace eng = buoni::engine;

// ---------------------------------------------------------------------------
// Images

StatusOr<StoreImage> read_image(const eng::Store& store) {
  StoreImage image;
  for (int i = 0; i < eng::space_count; ++i) {
    auto& rows = image[static_cast<std::size_t>(i)];
    Status s = store.scan(static_cast<eng::Space>(i), "", "",
                          [&rows](std::string_view key, std::string_view value) {
                            rows.emplace(key, value);
                            return true;
                          });
    if (!s.ok()) return s;
  }
  return image;
}

void apply_write(StoreImage& image, const eng::WriteSet& set) {
  for (const eng::WriteOp& op : set.ops) {
    auto& rows = image[static_cast<std::size_t>(op.space)];
    if (op.value) {
      rows[op.key] = *op.value;
    } else {
      rows.erase(op.key);
    }
  }
}

namespace {
std::string printable(std::string_view bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes.substr(0, 48)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}
}  // namespace

std::string image_difference(const StoreImage& want, const StoreImage& got) {
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i] == got[i]) continue;
    const std::string space = eng::space_name(static_cast<eng::Space>(i));
    std::string where = "space " + space + ": " + std::to_string(want[i].size()) +
                        " keys expected, " + std::to_string(got[i].size()) + " found";
    for (const auto& [key, value] : want[i]) {
      auto it = got[i].find(key);
      if (it == got[i].end()) return where + "; missing key " + printable(key);
      if (it->second != value) return where + "; different value at key " + printable(key);
    }
    for (const auto& [key, value] : got[i]) {
      if (!want[i].count(key)) return where + "; unexpected key " + printable(key);
    }
    return where;
  }
  return "";
}

std::uint64_t mix(std::uint64_t digest, std::string_view bytes) {
  if (digest == 0) digest = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    digest ^= c;
    digest *= 1099511628211ULL;
  }
  digest ^= bytes.size();
  digest *= 1099511628211ULL;
  return digest;
}

std::uint64_t image_digest(const StoreImage& image) {
  std::uint64_t d = mix(0, "image");
  for (const auto& rows : image) {
    for (const auto& [key, value] : rows) d = mix(mix(d, key), value);
  }
  return d;
}

// ---------------------------------------------------------------------------
// RecordingStore

StatusOr<std::optional<std::string>> RecordingStore::get(eng::Space space,
                                                         std::string_view key) const {
  if (inner_ == nullptr) return unavailable("recording store: closed");
  return inner_->get(space, key);
}

Status RecordingStore::scan(eng::Space space, std::string_view prefix, std::string_view start,
                            const eng::ScanVisitor& visit) const {
  if (inner_ == nullptr) return unavailable("recording store: closed");
  return inner_->scan(space, prefix, start, visit);
}

Status RecordingStore::write(const eng::WriteSet& set) {
  if (inner_ == nullptr) return unavailable("recording store: closed");
  Status s = inner_->write(set);
  std::lock_guard lock(mutex_);
  if (s.ok()) {
    apply_write(expected_, set);
    ++writes_ok_;
  } else {
    in_doubt_.push_back(set);
  }
  return s;
}

StoreImage RecordingStore::expected() const {
  std::lock_guard lock(mutex_);
  return expected_;
}

std::vector<eng::WriteSet> RecordingStore::in_doubt() const {
  std::lock_guard lock(mutex_);
  return in_doubt_;
}

std::uint64_t RecordingStore::writes_ok() const {
  std::lock_guard lock(mutex_);
  return writes_ok_;
}

void RecordingStore::rebase(StoreImage image) {
  std::lock_guard lock(mutex_);
  expected_ = std::move(image);
  in_doubt_.clear();
}

// ---------------------------------------------------------------------------
// Workload

namespace {
const std::string kProgramme = "sim";
const std::array<std::string, 2> kShops = {"shop-a", "shop-b"};

template <typename T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[rng() % v.size()];
}
std::int64_t between(std::mt19937_64& rng, std::int64_t lo, std::int64_t hi) {
  return lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
}
}  // namespace

std::vector<eng::Request> setup_requests(int cards) {
  std::vector<eng::Request> out;
  eng::CreateProgramme p;
  p.id = kProgramme;
  p.name = "Buoni simulati";
  p.budget_cents = 50'000'000'000;
  p.valid_from_day = static_cast<eng::Day>(kSimStartMs / 86'400'000) - 1;
  p.valid_until_day = p.valid_from_day + 1000;
  out.push_back({eng::Caller::admin(), "setup-programme", p});
  for (std::size_t i = 0; i < kShops.size(); ++i) {
    eng::AddMerchant m;
    m.id = kShops[i];
    m.name = "Bottega " + std::to_string(i + 1);
    m.vat_number = i == 0 ? "01234567897" : "12345678903";
    m.programmes = {kProgramme};
    m.api_key_hash[0] = static_cast<std::uint8_t>(i + 1);
    out.push_back({eng::Caller::admin(), "setup-shop-" + std::to_string(i), m});
  }
  for (int i = 0; i < cards; ++i) {
    eng::IssueCard c{kProgramme, "setup-" + std::to_string(i), 200'000, {}};
    out.push_back({eng::Caller::admin(), "setup-card-" + std::to_string(i), c});
  }
  return out;
}

void Pools::learn(const eng::Request& request, const eng::Result& result) {
  if (!result.outcome.ok()) return;
  std::lock_guard lock(mutex_);
  const eng::Outcome& o = result.outcome;
  if (std::holds_alternative<eng::IssueCard>(request.command)) {
    auto parsed = parse_card_number(o.card);
    if (parsed.id && std::find(cards_.begin(), cards_.end(), *parsed.id) == cards_.end()) {
      cards_.push_back(*parsed.id);
    }
  } else if (std::holds_alternative<eng::Authorize>(request.command)) {
    holds_.push_back({o.id, request.caller.merchant_id});
  } else if (std::holds_alternative<eng::Redeem>(request.command) ||
             std::holds_alternative<eng::Capture>(request.command)) {
    redemptions_.push_back({o.id, request.caller.merchant_id});
  }
}

eng::Request Pools::next(std::mt19937_64& rng, const std::string& key) {
  std::lock_guard lock(mutex_);
  const std::string shop = kShops[rng() % kShops.size()];
  const std::int64_t r = between(rng, 0, 99);
  const std::string ref = "ord-" + key;
  if (cards_.empty() || r < 6) {
    eng::IssueCard c{kProgramme, "fam-" + key, between(rng, 0, 300'000), {}};
    return {eng::Caller::admin(), key, c};
  }
  const CardId card = pick(rng, cards_);
  if (r < 12) return {eng::Caller::admin(), key, eng::LoadCard{card, between(rng, 1'000, 50'000)}};
  if (r < 45) {
    return {eng::Caller::merchant(shop), key, eng::Redeem{card, between(rng, 1, 4'000), ref, {}}};
  }
  if (r < 65 || holds_.empty()) {
    eng::Authorize a{card, between(rng, 1, 6'000), ref, between(rng, 60, 4 * 3600), {}};
    return {eng::Caller::merchant(shop), key, a};
  }
  if (r < 80) {
    const Owned& h = pick(rng, holds_);
    return {eng::Caller::merchant(h.merchant), key, eng::Capture{h.id, between(rng, 1, 6'000)}};
  }
  if (r < 88 || redemptions_.empty()) {
    const Owned& h = pick(rng, holds_);
    return {eng::Caller::merchant(h.merchant), key, eng::Void{h.id}};
  }
  const Owned& rd = pick(rng, redemptions_);
  return {eng::Caller::merchant(rd.merchant), key,
          eng::RefundRedemption{rd.id, between(rng, 1, 2'000)}};
}

// ---------------------------------------------------------------------------
// Rig

const char* loss_name(Loss loss) {
  switch (loss) {
    case Loss::crash:
      return "crash";
    case Loss::power_drop_all:
      return "power cut (all unsynced lost)";
    case Loss::power_random:
      return "power cut (random unsynced prefixes)";
  }
  return "?";
}

namespace {
SigningKey key_from(std::uint64_t seed) {
  const Hash32 bytes = blake2b_256("buoni fault rig key " + std::to_string(seed));
  return SigningKey::from_seed(1, std::span<const std::uint8_t, 32>(bytes.data(), 32));
}
}  // namespace

Rig::Rig(RigOptions options)
    : options_(std::move(options)),
      fs_(std::make_shared<FaultFs>()),
      env_(std::make_shared<FaultEnv>(fs_, options_.manual_background)),
      key_(key_from(options_.seed)),
      random_(options_.seed) {}

Rig::~Rig() {
  close();
}

Status Rig::open_store(bool create) {
  storage::RocksOptions o;
  o.create_if_missing = create;
  o.sync = options_.sync;
  o.env = env_;
  auto store = storage::open_primary(options_.dir, o);
  if (!store.ok()) return store.status();
  store_ = std::move(store).value();
  record_.attach(store_.get());
  return Status();
}

Status Rig::open(bool create) {
  BUONI_RETURN_IF_ERROR(open_store(create));
  auto engine = eng::Engine::open(record_, key_, clock_, random_);
  if (!engine.ok()) {
    close();
    return engine.status();
  }
  engine_ = std::move(engine).value();
  return Status();
}

void Rig::close() {
  if (engine_) engine_->stop();
  engine_.reset();
  record_.attach(nullptr);
  store_.reset();
}

Status Rig::reopen() {
  close();
  return open(false);
}

std::string Rig::setup(int cards) {
  for (const eng::Request& r : setup_requests(cards)) {
    auto answer = execute(r);
    if (!answer.ok()) return "setup: " + answer.status().to_string();
    if (!answer->outcome.ok()) {
      return "setup: " + std::string(eng::command_name(r.command)) + " declined " +
             std::string(eng::code_name(answer->outcome.code));
    }
    note(r, answer);
  }
  return "";
}

StatusOr<eng::Result> Rig::execute(const eng::Request& request) {
  if (options_.manual_background) env_->run_background();
  return engine_->execute(request);
}

void Rig::note(const eng::Request& request, const StatusOr<eng::Result>& answer) {
  if (answer.ok()) pools.learn(request, *answer);
  std::lock_guard lock(mutex_);
  if (answer.ok()) {
    acks_.push_back({request, *answer});
  } else {
    in_doubt_.push_back(request);
  }
}

std::size_t Rig::acks() const {
  std::lock_guard lock(mutex_);
  return acks_.size();
}

std::size_t Rig::in_doubt_requests() const {
  std::lock_guard lock(mutex_);
  return in_doubt_.size();
}

RecoveryReport Rig::recover(Loss loss, std::mt19937_64& rng, std::uint64_t cut_during_open) {
  RecoveryReport report;
  constexpr int attempts_max = 4;
  fs_->freeze();  // the instant the power goes (already so if an armed cut fired)
  close();
  for (int attempt = 1;; ++attempt) {
    if (loss != Loss::crash) {
      const CutMode mode =
          loss == Loss::power_drop_all ? CutMode::drop_all : CutMode::random_prefix;
      const CutReport cut = fs_->power_cut(rng, mode);
      report.cut.files_truncated += cut.files_truncated;
      report.cut.bytes_dropped += cut.bytes_dropped;
      report.cut.bytes_kept_unsynced += cut.bytes_kept_unsynced;
      report.cut.entries_undone += cut.entries_undone;
      report.cut.entries_kept += cut.entries_kept;
    }
    fs_->thaw();
    ++report.open_attempts;
    if (cut_during_open > 0 && attempt < attempts_max) fs_->arm_cut_after(cut_during_open);
    Status opened = open_store(false);
    fs_->arm_cut_after(0);
    if (opened.ok() && !fs_->frozen()) break;
    if (!fs_->frozen() || attempt == attempts_max) {
      report.problem = "reopen after " + std::string(loss_name(loss)) +
                       " failed: " + (opened.ok() ? "frozen" : opened.to_string());
      close();
      return report;
    }
    close();  // the power went again while RocksDB recovered: once more
  }
  auto image = read_image(*store_);
  if (!image.ok()) {
    report.problem = "reading the recovered store: " + image.status().to_string();
    return report;
  }
  check(report, *image);
  if (!report.problem.empty()) {
    if (report.state_differs) report.problem += "; recovered state: " + report.state_difference;
    return report;
  }
  record_.rebase(*image);
  auto engine = eng::Engine::open(record_, key_, clock_, random_);
  if (!engine.ok()) {
    report.problem = "engine open after recovery: " + engine.status().to_string();
    return report;
  }
  engine_ = std::move(engine).value();
  retry_in_doubt(report, *image);
  return report;
}

namespace {
std::string record_bytes(const Ack& ack) {
  const Hash32 print = eng::fingerprint(ack.request.command);
  std::string bytes(reinterpret_cast<const char*>(print.data()), print.size());
  return bytes + eng::encode(ack.result.outcome);
}

std::string record_key(const eng::Request& r) {
  return eng::keys::idempotency(r.caller.key(), r.idempotency_key);
}

// Exactly once in the ledger: no redemption, hold, capture or refund id is
// the ref of two entries of its kind. "" or the first repeat.
std::string repeated_entry(const StoreImage& image) {
  std::map<std::pair<eng::EntryKind, std::string>, int> seen;
  for (const auto& [key, value] : image[static_cast<std::size_t>(eng::Space::ledger)]) {
    eng::Entry e;
    if (!eng::decode(value, e).ok()) return "a ledger entry does not decode";
    const bool once = e.kind == eng::EntryKind::redeem || e.kind == eng::EntryKind::hold ||
                      e.kind == eng::EntryKind::capture || e.kind == eng::EntryKind::refund;
    if (once && ++seen[{e.kind, e.ref}] > 1) {
      return std::string(eng::entry_kind_name(e.kind)) + " " + e.ref + " is in the ledger twice";
    }
  }
  return "";
}
}  // namespace

// The recovered image against the record (see the header); lost acks are
// counted and forgotten, so a run with sync off goes on from what survived.
void Rig::check(RecoveryReport& report, const StoreImage& image) {
  const StoreImage expected = record_.expected();
  const std::string diff = image_difference(expected, image);
  if (!diff.empty()) {
    StoreImage with = expected;
    for (const eng::WriteSet& set : record_.in_doubt()) {
      apply_write(with, set);
      if (image_difference(with, image).empty()) report.in_doubt_present = true;
    }
    if (!report.in_doubt_present) {
      report.state_differs = true;
      report.state_difference = diff;
    }
  }
  const auto& records = image[static_cast<std::size_t>(eng::Space::idempotency)];
  const auto& ledger = image[static_cast<std::size_t>(eng::Space::ledger)];
  if (std::string twice = repeated_entry(image); !twice.empty()) report.problem = twice;
  std::vector<Ack> kept;
  {
    std::lock_guard lock(mutex_);
    for (const Ack& ack : acks_) {
      ++report.acks_checked;
      auto it = records.find(record_key(ack.request));
      if (it == records.end()) {
        ++report.acks_lost;
        continue;
      }
      if (it->second != record_bytes(ack) && report.problem.empty()) {
        report.problem = "acknowledged " + std::string(eng::command_name(ack.request.command)) +
                         " (key " + ack.request.idempotency_key +
                         ") has another stored outcome than its caller was told";
      }
      const std::uint64_t seq = ack.result.outcome.ledger_seq;
      if (seq > 0 && !ledger.count(eng::keys::ledger(seq)) && report.problem.empty()) {
        report.problem = "acknowledged " + std::string(eng::command_name(ack.request.command)) +
                         " (key " + ack.request.idempotency_key + ") names ledger seq " +
                         std::to_string(seq) + ", which is missing";
      }
      kept.push_back(ack);
    }
    acks_ = std::move(kept);
  }
  auto audit = eng::audit(*store_, {key_.verify_key()});
  if (!audit.ok()) {
    report.problem = "audit could not run: " + audit.status().to_string();
    return;
  }
  report.ledger_entries = audit->entries;
  report.image_digest = image_digest(image);
  if (!audit->clean() && report.problem.empty()) {
    report.problem = "audit: " + std::to_string(audit->findings.size()) +
                     " findings, first: " + audit->findings[0].to_string();
  }
}

// Every request answered with an error is sent again with its key, as a
// client would: ok, and replayed exactly when its record survived.
void Rig::retry_in_doubt(RecoveryReport& report, const StoreImage& image) {
  std::vector<eng::Request> doubt;
  {
    std::lock_guard lock(mutex_);
    doubt.swap(in_doubt_);
  }
  const auto& records = image[static_cast<std::size_t>(eng::Space::idempotency)];
  for (const eng::Request& r : doubt) {
    const bool survived = records.count(record_key(r)) > 0;
    auto answer = execute(r);
    ++report.retried;
    if (!answer.ok()) {
      if (report.problem.empty()) report.problem = "retry: " + answer.status().to_string();
      note(r, answer);
      continue;
    }
    if (answer->replayed) ++report.retries_replayed;
    if (answer->replayed != survived && report.problem.empty()) {
      report.problem = "retry of " + std::string(eng::command_name(r.command)) + " (key " +
                       r.idempotency_key + ") answered " +
                       (answer->replayed ? "replayed" : "applied anew") + " but its record " +
                       (survived ? "survived" : "was not there");
    }
    note(r, answer);
  }
}

}  // namespace buoni::test
