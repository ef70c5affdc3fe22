// The fuzz targets' deterministic world (see fuzz_world.h).
#include "fuzz_world.h"

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>

#include "crypto/api_key.h"
#include "crypto/card_number.h"
#include "crypto/hash.h"
#include "crypto/token.h"
#include "engine/calendar.h"
#include "engine/pin.h"

namespace buoni::fuzz {

namespace {

constexpr std::string_view kStartDay = "2026-02-10";
constexpr engine::TimeMs kTenOClock = 10 * 3'600'000;

engine::TimeMs start_ms() {
  return *engine::parse_day(kStartDay) * engine::ms_per_day + kTenOClock;
}

std::unique_ptr<World>& current() {
  static std::unique_ptr<World> world;
  return world;
}

// BUONI_FUZZ_VERBOSE=1: every request and the start of its answer on stderr
// (to see what a seed reaches).
bool verbose() {
  static const bool on = std::getenv("BUONI_FUZZ_VERBOSE") != nullptr;
  return on;
}

std::size_t& runs() {
  static std::size_t count = 0;
  return count;
}

// Runs one command that must succeed while the world is built.
engine::Outcome must(engine::Engine& engine, engine::Caller caller, engine::Command command) {
  auto result = engine.execute({std::move(caller), "", std::move(command)});
  fuzz_check(result.ok(), "world: the engine failed");
  fuzz_check(result->outcome.ok(), "world: a setup command was declined");
  return result->outcome;
}

engine::CreateProgramme programme(std::string id, bool require_pin) {
  engine::CreateProgramme p;
  p.id = std::move(id);
  p.name = "Buoni " + p.id;
  p.budget_cents = 1'000'000;
  p.valid_from_day = *engine::parse_day("2026-02-01");
  p.valid_until_day = *engine::parse_day("2026-03-31");
  p.require_pin = require_pin;
  return p;
}

}  // namespace

void fuzz_check(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

const SigningKey& world_key() {
  static const SigningKey key = [] {
    std::array<std::uint8_t, 32> seed{};
    for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(i + 1);
    return SigningKey::from_seed(1, seed);
  }();
  return key;
}

std::vector<VerifyKey> world_verify_keys() {
  return {world_key().verify_key()};
}

std::int32_t world_today() {
  return engine::day_of(start_ms());
}

World& World::get() {
  if (!current()) current() = std::make_unique<World>();
  return *current();
}

void World::after_run() {
  if (++runs() % kRunsPerWorld != 0) return;
  current().reset();
  current() = std::make_unique<World>();
}

World::World() : clock_(start_ms()) {
  for (std::size_t i = 0; i < pepper_.size(); ++i) pepper_[i] = static_cast<std::uint8_t>(7 * i);
  auto opened = engine::Engine::open(store_, world_key(), clock_, random_);
  fuzz_check(opened.ok(), "world: Engine::open failed");
  engine_ = std::move(opened).value();
  ctx_ = std::make_unique<api::ApiContext>(api::ApiContext{*engine_, store_, world_key(),
                                                           world_verify_keys(), pepper_,
                                                           blake2b_256(kAdminKey), clock_});
  auto admin = engine::Caller::admin();
  must(*engine_, admin, programme("food", false));
  must(*engine_, admin, programme("pinned", true));
  must(*engine_, admin,
       engine::AddMerchant{"shop1", "Alimentari Uno", "01234567897", {"food", "pinned"},
                           api_key_hash(kMerchantKey)});
  const engine::Day until = *engine::parse_day("2026-03-31");
  CardId c1 = *parse_card_number(
                   must(*engine_, admin, engine::IssueCard{"food", "fam-1", 50'000}).card)
                   .id;
  engine::IssueCard pinned{"pinned", "fam-2", 50'000};
  pinned.pin_hash = engine::hash_pin(pepper_, kPin);
  CardId c2 = *parse_card_number(must(*engine_, admin, pinned).card).id;
  card1_number = format_card_number(c1);
  card1_id = format_card_id(c1);
  card1_token = make_token(world_key(), c1, until);
  card1_link = make_token_link(world_key(), c1, until);
  card2_number = format_card_number(c2);
  card2_token = make_token(world_key(), c2, until);
  auto shop = engine::Caller::merchant("shop1");
  hold_id = must(*engine_, shop, engine::Authorize{c1, 1'000, "hold-1", 0}).id;
  redemption_id = must(*engine_, shop, engine::Redeem{c1, 2'000, "sale-1"}).id;
}

World::~World() {
  ctx_.reset();
  engine_.reset();  // joins the writer before the store goes
}

api::Request make_request(api::http::verb method, std::string_view target, std::string_view body,
                          std::string_view key, std::string_view idempotency_key) {
  api::Request req{method, target, 11};
  if (!key.empty()) req.set(api::http::field::authorization, "Bearer " + std::string(key));
  if (!idempotency_key.empty()) req.set("Idempotency-Key", idempotency_key);
  req.body() = std::string(body);
  req.prepare_payload();
  return req;
}

api::Response checked_handle(World& world, const api::Request& req) {
  api::Response res = api::handle_request(world.context(), req);
  const unsigned status = res.result_int();
  fuzz_check(status >= 200 && status <= 599, "an answer's status is outside 200..599");
  fuzz_check(status != 500, "handle_request answered 500: an exception escaped a route");
  if (verbose()) {
    std::fprintf(stderr, "%s %s -> %u %.160s\n", std::string(req.method_string()).c_str(),
                 std::string(req.target()).c_str(), status, res.body().c_str());
  }
  const bool json_answer = res[api::http::field::content_type] == "application/json";
  if (json_answer && status >= 400) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(res.body(), ec);
    fuzz_check(!ec && v.is_object() && v.as_object().contains("error"),
               "a JSON error answer is not {\"error\": {...}}");
  }
  return res;
}

}  // namespace buoni::fuzz
