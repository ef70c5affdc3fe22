// audit_bench: how fast `buoni audit`, `buoni export` and `buoni
// verify-export` get through a big ledger, against the ceiling of the same
// run: BLAKE2b-256 over exactly the bytes the chain hashes (and, for
// reference, a bare RocksDB scan of the ledger).
//
//   audit_bench [--entries N] [--dir DIR] [--keep]
// Builds a real ledger of N entries (default 1,000,000) through the engine on
// RocksDB (sync off: the build is not what is measured): a programme, a shop,
// 1,000 cards, then 1-cent sales in writer batches of up to 1,024, each batch
// with its signed checkpoint. Then times each step and prints entries/s and
// the ratio to the BLAKE2b baseline. Target (issue 5): > 500,000 entries/s.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "crypto/hash.h"
#include "crypto/random.h"
#include "engine/audit.h"
#include "engine/clock.h"
#include "engine/codec.h"
#include "engine/engine.h"
#include "engine/export.h"
#include "engine/export_format.h"
#include "storage/rocks_store.h"

using namespace buoni;
using namespace buoni::engine;
using Wall = std::chrono::steady_clock;

namespace {

constexpr int cards_count = 1'000;
constexpr int in_flight_max = 8'192;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "audit_bench: %s\n", what.c_str());
  std::exit(1);
}

double seconds_since(Wall::time_point t0) {
  return std::chrono::duration<double>(Wall::now() - t0).count();
}

// Submits `count` commands made by `make(i)`, at most in_flight_max at a time.
template <typename Make>
void pump(Engine& e, std::uint64_t count, Make make) {
  std::atomic<std::uint64_t> done{0}, failed{0};
  for (std::uint64_t i = 0; i < count; ++i) {
    while (i - done.load(std::memory_order_relaxed) >= in_flight_max) std::this_thread::yield();
    e.submit(make(i), [&](StatusOr<Result> r) {
      if (!r.ok() || !r->outcome.ok()) failed.fetch_add(1);
      done.fetch_add(1);
    });
  }
  while (done.load() < count) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (failed.load()) die(std::to_string(failed.load()) + " commands failed while building");
}

void build(Engine& e, std::uint64_t entries, TimeMs now_ms) {
  Day today = day_of(now_ms);
  auto r = e.execute(
      {Caller::admin(), "",
       CreateProgramme{"bench", "bench", 90'000'000'000, today - 1, today + 30, false, 0, 0}});
  if (!r.ok() || !r->outcome.ok()) die("cannot create the programme");
  r = e.execute({Caller::admin(), "", AddMerchant{"shop", "shop", "01234567897", {"bench"}, {}}});
  if (!r.ok() || !r->outcome.ok()) die("cannot add the shop");
  std::vector<CardId> cards(cards_count);
  std::uint64_t n_cards = std::min<std::uint64_t>(cards_count, entries > 2 ? entries - 2 : 0);
  for (std::uint64_t i = 0; i < n_cards; ++i) {
    auto issued =
        e.execute({Caller::admin(), "", IssueCard{"bench", "b" + std::to_string(i), 5'000'000}});
    if (!issued.ok() || !issued->outcome.ok()) die("cannot issue a card");
    cards[i] = *parse_card_number(issued->outcome.card).id;
  }
  std::uint64_t sales = entries > n_cards + 1 ? entries - n_cards - 1 : 0;
  pump(e, sales, [&](std::uint64_t i) {
    return Request{Caller::merchant("shop"), "", Redeem{cards[i % n_cards], 1, ""}};
  });
}

struct Baselines {
  double blake2b_per_s = 0, scan_per_s = 0;
};

// BLAKE2b over prev || tag || entry_body of every entry, read into memory first.
Baselines baselines(const Store& store) {
  std::vector<std::string> bodies;
  auto t0 = Wall::now();
  Status s = store.scan(Space::ledger, "", "", [&](std::string_view, std::string_view value) {
    bodies.emplace_back(value);
    return true;
  });
  if (!s.ok()) die(s.to_string());
  Baselines b;
  b.scan_per_s = static_cast<double>(bodies.size()) / seconds_since(t0);
  Hash32 prev{};
  t0 = Wall::now();
  for (const std::string& v : bodies) {
    Hasher h;
    h.update(prev);
    h.update("buoni-entry-v1");
    h.update(std::string_view(v).substr(1, v.size() - 33));
    prev = h.finish();
  }
  b.blake2b_per_s = static_cast<double>(bodies.size()) / seconds_since(t0);
  if (prev == Hash32{}) die("no entries");
  return b;
}

// CPU seconds of the whole process (all threads): on a shared, busy machine
// the wall time of a step also measures the neighbours; this does not.
double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Step {
  Wall::time_point wall_t0 = Wall::now();
  double cpu_t0 = process_cpu_s();
};

void row(const char* step, std::uint64_t entries, double seconds, double baseline,
         double cpu_s = 0) {
  double per_s = static_cast<double>(entries) / seconds;
  std::printf("%-22s %12llu %10.2f %14.0f %12.2f %10.2f\n", step,
              static_cast<unsigned long long>(entries), seconds, per_s, per_s / baseline, cpu_s);
}

void row(const char* step, std::uint64_t entries, const Step& since, double baseline) {
  row(step, entries, seconds_since(since.wall_t0), baseline, process_cpu_s() - since.cpu_t0);
}

// What parsing alone costs on the same file: every line parsed, nothing
// checked, by a general JSON parser (boost::json, into a fresh arena per
// line) and by the strict reader of flat records verify-export uses
// (engine/export_format.h). The pair is the measured reason for the latter.
template <typename Parse>
void parse_baseline(const char* label, const std::string& file, std::vector<char>& buffer,
                    double baseline, Parse parse) {
  Step step;
  std::ifstream in;
  in.rdbuf()->pubsetbuf(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  in.open(file, std::ios::binary);
  std::string line;
  std::uint64_t lines = 0, fields = 0;
  while (std::getline(in, line)) {
    fields += parse(line);
    ++lines;
  }
  if (fields == 0) die(std::string(label) + ": no fields");
  row(label, lines, step, baseline);
}

void json_parse_baselines(const std::string& file, std::vector<char>& buffer, double baseline) {
  parse_baseline("  parse: boost::json", file, buffer, baseline, [](const std::string& line) {
    boost::json::monotonic_resource arena;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec, &arena);
    if (ec || !v.is_object()) die("boost::json: not an object: " + ec.message());
    return v.get_object().size();
  });
  export_format::Record record;
  std::string error;
  parse_baseline("  parse: export_format", file, buffer, baseline, [&](const std::string& line) {
    if (!export_format::parse_json_line(line, record, error)) die("parse_json_line: " + error);
    return static_cast<std::size_t>(std::count(record.present.begin(), record.present.end(), true));
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t entries = 1'000'000;
  std::string dir = "/tmp/buoni-audit-bench";
  bool keep = false, reuse = false;
  std::string steps = "audit,export,verify";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--entries" && i + 1 < argc) {
      entries = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "--reuse") {  // the ledger DIR kept by an earlier --keep run
      reuse = keep = true;
    } else if (a == "--steps" && i + 1 < argc) {  // for profiling one step
      steps = argv[++i];
    } else {
      die("usage: audit_bench [--entries N] [--dir DIR] [--keep] [--reuse] [--steps audit,export]");
    }
  }
  if (entries < 10) die("--entries: at least 10");
  if (!reuse) std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = storage::open_primary(dir + "/db", {.create_if_missing = true, .sync = false});
  if (!store.ok()) die(store.status().to_string());
  std::array<std::uint8_t, 32> seed{};  // a fixed key, so --reuse verifies
  SigningKey key = SigningKey::from_seed(1, seed);
  SystemClock clock;
  SystemRandom random;
  auto t0 = Wall::now();
  if (!reuse) {
    auto engine = Engine::open(**store, key, clock, random);
    if (!engine.ok()) die(engine.status().to_string());
    build(**engine, entries, clock.now_ms());
  }
  auto head = read_head(**store);
  if (!head.ok()) die(head.status().to_string());
  std::printf("audit_bench: %llu ledger entries built in %.1f s (engine, RocksDB sync off)\n",
              static_cast<unsigned long long>(head->seq), seconds_since(t0));

  Baselines base = baselines(**store);
  std::printf("%-22s %12s %10s %14s %12s %10s\n", "step", "entries", "seconds", "entries/s",
              "x_blake2b", "cpu_s");
  row("baseline: blake2b", head->seq, static_cast<double>(head->seq) / base.blake2b_per_s,
      base.blake2b_per_s);
  row("baseline: rocks scan", head->seq, static_cast<double>(head->seq) / base.scan_per_s,
      base.blake2b_per_s);

  std::vector<VerifyKey> keys{key.verify_key()};
  if (steps.find("audit") != std::string::npos) {
    Step step;
    auto report = audit(**store, keys);
    if (!report.ok()) die(report.status().to_string());
    if (!report->clean()) die("audit found " + report->findings.front().to_string());
    row("audit", report->entries, step, base.blake2b_per_s);
  }

  std::string file = dir + "/ledger.jsonl";
  for (ExportFormat format : {ExportFormat::jsonl, ExportFormat::csv}) {
    if (steps.find("export") == std::string::npos && steps.find("verify") == std::string::npos)
      break;
    std::vector<char> buffer(1 << 20);
    Step export_step;
    auto summary = [&] {
      std::ofstream out;
      out.rdbuf()->pubsetbuf(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      out.open(file, std::ios::binary | std::ios::trunc);
      return export_ledger(**store, 1, format, clock.now_ms(), out);
    }();
    if (!summary.ok()) die(summary.status().to_string());
    std::string name = std::string(export_format_name(format));
    row(("export " + name).c_str(), summary->entries, export_step, base.blake2b_per_s);
    if (steps.find("verify") == std::string::npos) continue;
    Step verify_step;
    std::ifstream in;
    in.rdbuf()->pubsetbuf(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    in.open(file, std::ios::binary);
    auto verdict = verify_export(in, keys);
    if (!verdict.ok()) die(verdict.status().to_string());
    if (!verdict->ok()) die("verify-export: " + verdict->summary());
    row(("verify-export " + name).c_str(), verdict->entries, verify_step, base.blake2b_per_s);
    if (format == ExportFormat::jsonl) json_parse_baselines(file, buffer, base.blake2b_per_s);
    std::printf("  (%s file: %.0f MB, %.0f bytes/entry)\n", name.c_str(),
                static_cast<double>(std::filesystem::file_size(file)) / 1e6,
                static_cast<double>(std::filesystem::file_size(file)) /
                    static_cast<double>(summary->entries));
  }
  store->reset();
  if (!keep) std::filesystem::remove_all(dir);
  return 0;
}
