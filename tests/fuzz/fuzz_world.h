// A small, deterministic buoni world shared by the fuzz targets and by the
// program that writes their seed corpora (make_corpus.cpp).
//
// An Engine over a MemoryStore with a pinned clock (2026-02-10T10:00Z), a
// seeded random source and a signing key made from a fixed seed, so card
// numbers, tokens and ids come out the same on every run and the corpora's
// valid tokens keep verifying. It holds: programme "food" (no PIN) and
// "pinned" (require_pin), shop "shop1" (key kMerchantKey) in both, card c1
// (food, 50000), card c2 (pinned, PIN kPin), a pending authorization on c1 and
// a redemption on c1. The admin key is kAdminKey.
//
// Fuzz targets call World::get() (built on first use) and World::after_run()
// once per input: every kRunsPerWorld inputs the world is rebuilt, so a long
// fuzzing session does not grow the in-memory store without bound.
// fuzz_check() aborts with a message: a broken property is a crash.
// Not thread-safe: one fuzzing thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/handler.h"
#include "crypto/random.h"
#include "crypto/signing.h"
#include "engine/clock.h"
#include "engine/engine.h"
#include "engine/memory_store.h"

namespace buoni::fuzz {

inline constexpr std::string_view kAdminKey = "ak_fuzz-admin-key";
inline constexpr std::string_view kMerchantKey = "mk_fuzz-shop-key";
inline constexpr std::string_view kPin = "12345";
inline constexpr std::size_t kRunsPerWorld = 20000;

// Aborts (a libFuzzer crash) with `what` when `ok` is false.
void fuzz_check(bool ok, std::string_view what);

// The fixed signing key (key id 1) and its public half.
[[nodiscard]] const SigningKey& world_key();
[[nodiscard]] std::vector<VerifyKey> world_verify_keys();
// The pinned clock's day (days since 1970-01-01 UTC).
[[nodiscard]] std::int32_t world_today();

class World {
 public:
  // The current world (built on first use).
  static World& get();
  // Counts a run; rebuilds the world every kRunsPerWorld runs.
  static void after_run();

  World();
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  [[nodiscard]] api::ApiContext& context() { return *ctx_; }
  [[nodiscard]] const engine::Store& store() const { return store_; }

  std::string card1_number, card1_id, card1_token, card1_link;
  std::string card2_number, card2_token;
  std::string hold_id, redemption_id;

 private:
  engine::MemoryStore store_;
  engine::ManualClock clock_;
  SeededRandom random_{20260210};
  std::array<std::uint8_t, 32> pepper_{};
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<api::ApiContext> ctx_;
};

// A request as the server would hand it to handle_request.
[[nodiscard]] api::Request make_request(api::http::verb method, std::string_view target,
                                        std::string_view body, std::string_view key,
                                        std::string_view idempotency_key);
// Calls handle_request and checks what every answer must be: a status from
// 200 to 599 and never 500 (an exception escaped a route: a bug), a JSON
// error object on JSON error answers. With BUONI_FUZZ_VERBOSE set, prints
// each request line and the start of its answer on stderr.
api::Response checked_handle(World& world, const api::Request& req);

}  // namespace buoni::fuzz
