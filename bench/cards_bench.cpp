// cards_bench: bulk issuance (store + sign the token) and card rendering.
//
//   cards_bench [DIR] [CARDS_TO_ISSUE] [CARDS_TO_RENDER]
// Issues CARDS_TO_ISSUE cards (default 100,000) through the engine with up
// to limits::bulk_in_flight_max in flight, as `buoni issue` does, making each
// card's token; the baseline, measured in the same run on 300 cards, issues
// one card at a time (one fsync each). Then renders CARDS_TO_RENDER cards
// (default 10,000) to an A4 PDF. Prints cards/s, the ratio to the baseline or
// target, and the process's peak resident memory.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "api/card_render.h"
#include "crypto/token.h"
#include "engine/calendar.h"
#include "engine/engine.h"
#include "engine/limits.h"
#include "storage/rocks_store.h"

using namespace buoni;
using namespace buoni::engine;
using Wall = std::chrono::steady_clock;

namespace {

double seconds_since(Wall::time_point t0) {
  return std::chrono::duration<double>(Wall::now() - t0).count();
}

long peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

// Issues refs [first, first+count) with up to `in_flight` requests queued;
// returns the card ids with their tokens made.
std::vector<CardId> issue(Engine& e, const SigningKey& key, Day expiry, int first, int count,
                          std::size_t in_flight) {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<CardId> cards;
  std::size_t answered = 0;
  std::size_t sent = 0;
  std::string sink;
  for (int i = first; i < first + count; ++i) {
    {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return sent - answered < in_flight; });
    }
    ++sent;
    e.submit({Caller::admin(), "", IssueCard{"bench", "ref-" + std::to_string(i), 15'000}},
             [&](StatusOr<Result> r) {
               std::lock_guard lock(mutex);
               if (!r.ok() || !r->outcome.ok()) std::abort();
               cards.push_back(*parse_card_number(r->outcome.card).id);
               ++answered;
               cv.notify_all();
             });
  }
  std::unique_lock lock(mutex);
  cv.wait(lock, [&] { return answered == sent; });
  for (const auto& id : cards) sink += make_token(key, id, expiry);  // sign each token
  if (sink.empty()) std::abort();
  return cards;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "/tmp/buoni-cards-bench";
  int to_issue = argc > 2 ? std::atoi(argv[2]) : 100'000;
  int to_render = argc > 3 ? std::atoi(argv[3]) : 10'000;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  storage::RocksOptions options;
  options.create_if_missing = true;
  auto store = storage::open_primary(dir + "/db", options);
  if (!store.ok()) {
    std::fprintf(stderr, "cards_bench: %s\n", store.status().to_string().c_str());
    return 1;
  }
  SigningKey key = SigningKey::generate(1);
  SystemClock clock;
  SystemRandom random;
  auto engine = Engine::open(**store, key, clock, random);
  if (!engine.ok()) return 1;
  Day today = day_of(clock.now_ms());
  auto created =
      (*engine)->execute({Caller::admin(), "",
                          CreateProgramme{"bench", "Buoni spesa (bench)", limits::budget_cents_max,
                                          today, today + 365, false, 0, 0}});
  if (!created.ok() || !created->outcome.ok()) return 1;

  auto t0 = Wall::now();
  issue(**engine, key, today + 365, 0, 300, 1);
  double baseline = 300 / seconds_since(t0);
  t0 = Wall::now();
  std::vector<CardId> cards =
      issue(**engine, key, today + 365, 1'000, to_issue, limits::bulk_in_flight_max);
  double issue_s = seconds_since(t0);
  std::printf(
      "issue: %d cards in %.2f s = %.0f cards/s (one at a time: %.0f cards/s, x%.1f); "
      "target 100,000 in < 10 s\n",
      to_issue, issue_s, to_issue / issue_s, baseline, to_issue / issue_s / baseline);

  t0 = Wall::now();
  auto writer = api::PdfSheetWriter::create(dir + "/cards.pdf");
  if (!writer.ok()) return 1;
  for (int i = 0; i < to_render && i < static_cast<int>(cards.size()); ++i) {
    api::CardFace face{"Buoni spesa Venezia",
                       "Comune di Venezia",
                       15'000,
                       format_day(today + 365),
                       format_card_number(cards[i]),
                       make_token(key, cards[i], today + 365),
                       "http://127.0.0.1:8080/c/" + make_token_link(key, cards[i], today + 365)};
    if (!writer->add(face).ok()) return 1;
  }
  if (!writer->finish().ok()) return 1;
  double render_s = seconds_since(t0);
  std::printf(
      "render: %d cards to PDF in %.2f s = %.0f cards/s (%zu pages, %.1f MiB); "
      "target 10,000 in < 60 s\n",
      to_render, render_s, to_render / render_s, writer->pages(),
      std::filesystem::file_size(dir + "/cards.pdf") / 1048576.0);
  std::printf("peak resident memory: %ld MiB\n", peak_rss_mib());
  (*engine)->stop();
  std::filesystem::remove_all(dir);
  return 0;
}
