// buoni issue: bulk issuance from a CSV (beneficiary_ref,amount_cents[,...]).
//
// The whole file is validated first; any bad line is reported with its line
// number and nothing is issued. Re-running the same file issues nothing
// twice: references that already have a card are listed as existing. New
// PINs go to --pins-out (mode 0600) line by line as cards are acknowledged.
//
// With --server, each new card is one POST /v1/cards, bulk_connections of
// them in flight on kept-alive connections, each under an Idempotency-Key
// made from the programme, the reference and the amount: a re-run gets the
// first answers again (replays, with their tokens, so the PDF can show
// them). A reference that got its card some other way is 409
// already_issued, counted as existing; the server gives a card's token only
// when it makes the card, so such a card cannot be put in the PDF (the
// summary says how many were left out). The budget is checked up front
// only while the programme has no cards (else the server declines each line
// over it, budget_exceeded).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <variant>

#include "api/render.h"
#include "crypto/hash.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/pin.h"
#include "engine/queries.h"
#include "engine/validate.h"
#include "tools/card_face.h"
#include "tools/commands.h"
#include "tools/csv.h"
#include "tools/remote.h"

namespace buoni::tools {

namespace {

namespace json = boost::json;

// Connections (requests in flight) of `issue --server`.
constexpr std::size_t bulk_connections = 16;

struct IssueArgs {
  std::string programme, csv, out, pins_out;
};

struct Line {
  std::size_t line = 0;
  std::string ref;
  engine::Cents amount_cents = 0;
  std::optional<CardId> existing;  // already issued before this run
  std::optional<CardId> issued;    // issued by this run
  std::string pin;
  // --server: the card as the server answered (no token for a card that
  // already existed and was not made by an earlier run of this file).
  std::string number, qr_text, link;
  engine::Cents face_cents = 0;
};

// What bulk issuance needs of the programme, read from its JSON (local:
// api::programme_json; --server: GET /v1/programmes/{id}).
struct ProgrammeInfo {
  std::string id, name, valid_until;
  engine::Cents budget_cents = 0, issued_cents = 0;
  std::int64_t cards = 0;
  bool require_pin = false;
};

std::int64_t int_of(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v && v->is_int64() ? v->get_int64() : 0;
}

ProgrammeInfo info_of(const json::object& p) {
  const json::value* pin = p.if_contains("require_pin");
  return {field(p, "id"),
          field(p, "name"),
          field(p, "valid_until"),
          int_of(p, "budget_cents"),
          int_of(p, "issued_cents"),
          int_of(p, "cards"),
          pin && pin->is_bool() && pin->get_bool()};
}

std::string read_csv_file(const std::string& path) {
  return read_input_file("--csv", path, limits::csv_bytes_max);
}

int column(const CsvFile& f, std::string_view name) {
  for (std::size_t i = 0; i < f.header.size(); ++i) {
    if (f.header[i] == name) return static_cast<int>(i);
  }
  throw UsageError{"--csv: the header has no '" + std::string(name) +
                   "' column (it needs beneficiary_ref,amount_cents)"};
}

// Checks every line's fields; returns the problems, each "line N: ...".
std::vector<std::string> check_lines(const CsvFile& f, std::vector<Line>& lines) {
  int ref_col = column(f, "beneficiary_ref"), amount_col = column(f, "amount_cents");
  std::vector<std::string> problems;
  std::map<std::string, std::size_t> seen;
  for (const auto& row : f.rows) {
    std::string at = "line " + std::to_string(row.line) + ": ";
    if (row.fields.size() != f.header.size()) {
      problems.push_back(at + std::to_string(row.fields.size()) + " fields, the header has " +
                         std::to_string(f.header.size()));
      continue;
    }
    Line l{row.line, row.fields[ref_col]};
    if (!engine::valid_beneficiary_ref(l.ref)) {
      problems.push_back(at + "beneficiary_ref must be 1-64 printable ASCII characters");
      continue;
    }
    auto [it, fresh] = seen.emplace(l.ref, row.line);
    if (!fresh)
      problems.push_back(at + "beneficiary_ref repeats line " + std::to_string(it->second));
    try {
      l.amount_cents =
          parse_cents("amount_cents", row.fields[amount_col], limits::amount_cents_max, true);
    } catch (const UsageError& e) {
      problems.push_back(at + e.message);
      continue;
    }
    lines.push_back(std::move(l));
  }
  return problems;
}

// Marks the lines whose reference already has a card (local mode).
Status mark_existing(const engine::Store& store, const std::string& programme,
                     std::vector<Line>& lines) {
  for (Line& l : lines) {
    BUONI_ASSIGN_OR_RETURN(l.existing, engine::find_beneficiary_card(store, programme, l.ref));
  }
  return Status();
}

// The new cards (lines without an existing card) must fit the budget left.
void check_budget(const std::vector<Line>& lines, const ProgrammeInfo& p,
                  std::vector<std::string>& problems) {
  engine::Cents new_total = 0;
  for (const Line& l : lines) {
    if (!l.existing) new_total += l.amount_cents;
  }
  engine::Cents left = p.budget_cents - p.issued_cents;
  if (new_total > left) {
    problems.push_back("the new cards total " + std::to_string(new_total) +
                       " cents, over the remaining budget of " + std::to_string(left) + " cents");
  }
}

// Prints the problems of a file; exit 2.
int refuse_file(const std::vector<std::string>& problems, const IssueArgs& a) {
  for (const auto& line : problems) std::cerr << "buoni: --csv " << printable(line) << "\n";
  std::cerr << "buoni: usage: " << problems.size() << " problem(s) in " << printable(a.csv)
            << "; nothing was issued\n";
  return exit_usage;
}

// The PINs file: created new (never overwritten), mode 0600, one line per card.
class PinsFile {
 public:
  explicit PinsFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd_ < 0) throw UsageError{"--pins-out: cannot create " + path + " (it must not exist)"};
    put("beneficiary_ref,card_number,pin\n");
  }
  ~PinsFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  void put(const std::string& text) {
    if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) failed_ = true;
  }
  [[nodiscard]] Status close() {
    if (::fsync(fd_) != 0 || failed_) return io_error("writing " + path_ + " failed");
    ::close(fd_);
    fd_ = -1;
    return Status();
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool failed_ = false;
};

struct Progress {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::size_t> done;  // indexes of answered lines, not yet handled
};

// Issues every line without a card, keeping up to bulk_in_flight_max in
// flight so the writer fills its batches. Declines are returned as lines.
std::vector<std::string> issue_new(Node& node, const engine::Programme& p, std::vector<Line>& lines,
                                   PinsFile* pins) {
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!lines[i].existing) todo.push_back(i);
  }
  Progress progress;
  std::vector<StatusOr<engine::Result>> results(lines.size(), Status(StatusCode::internal, "?"));
  std::vector<std::string> declines;
  std::size_t sent = 0, handled = 0;
  while (handled < todo.size()) {
    while (sent < todo.size() && sent - handled < limits::bulk_in_flight_max) {
      Line& l = lines[todo[sent++]];
      engine::IssueCard c{p.id, l.ref, l.amount_cents};
      if (p.require_pin) {
        l.pin = engine::make_pin(node.random());
        c.pin_hash = engine::hash_pin(node.pin_pepper(), l.pin);
      }
      std::size_t index = todo[sent - 1];
      node.engine().submit({engine::Caller::admin(), "", c},
                           [&progress, &results, index](StatusOr<engine::Result> r) {
                             std::lock_guard lock(progress.mutex);
                             results[index] = std::move(r);
                             progress.done.push_back(index);
                             progress.cv.notify_one();
                           });
    }
    std::vector<std::size_t> answered;
    {
      std::unique_lock lock(progress.mutex);
      progress.cv.wait(lock, [&] { return !progress.done.empty(); });
      answered.swap(progress.done);
    }
    for (std::size_t index : answered) {
      Line& l = lines[index];
      const auto& r = results[index];
      if (!r.ok()) throw UsageError{"issuance stopped: " + r.status().to_string()};
      const engine::Outcome& o = r->outcome;
      if (o.ok() || o.code == engine::Code::already_issued) {
        CardId id = *parse_card_number(o.card).id;
        (o.ok() ? l.issued : l.existing) = id;
        if (o.ok() && pins) {
          pins->put(csv_field(l.ref) + "," + format_card_number(id) + "," + l.pin + "\n");
        }
      } else {
        declines.push_back("line " + std::to_string(l.line) + ": declined " +
                           std::string(engine::code_name(o.code)));
      }
      ++handled;
    }
    progress_bar("issue", handled, todo.size());
  }
  return declines;
}

// The face printed for a line; nullopt when the line has no card to print.
using FaceOf = std::function<StatusOr<std::optional<api::CardFace>>(const Line&)>;

Status write_pdf(const std::vector<Line>& lines, api::PdfSheetWriter& writer,
                 const FaceOf& face_of) {
  std::size_t done = 0;
  for (const auto& l : lines) {
    BUONI_ASSIGN_OR_RETURN(std::optional<api::CardFace> face, face_of(l));
    if (face) BUONI_RETURN_IF_ERROR(writer.add(*face));
    progress_bar("pdf", ++done, lines.size());
  }
  return writer.finish();
}

struct Summary {
  engine::Cents remaining_cents = 0;
  bool require_pin = false;
  std::size_t unprinted = 0;  // --server: existing cards without a token, left out of the PDF
};

int summarise(const Common& common, const std::vector<Line>& lines,
              const std::vector<std::string>& declines, const IssueArgs& a, const Summary& s) {
  std::int64_t issued = 0, existing = 0;
  engine::Cents issued_cents = 0;
  json::array existing_refs;
  for (const auto& l : lines) {
    if (l.issued) {
      ++issued;
      issued_cents += l.amount_cents;
    } else if (l.existing) {
      ++existing;
      existing_refs.emplace_back(l.ref);
    }
  }
  for (const auto& d : declines) std::cerr << "buoni: " << printable(d) << "\n";
  std::string text = "issued " + std::to_string(issued) + " cards (" +
                     std::to_string(issued_cents) + " cents), " + std::to_string(existing) +
                     " already existed, " + std::to_string(declines.size()) +
                     " declined; remaining budget " + std::to_string(s.remaining_cents) + " cents";
  if (!a.out.empty()) text += "\ncards written to " + a.out;
  if (!a.out.empty() && s.unprinted > 0) {
    text += "\n" + std::to_string(s.unprinted) +
            " existing card(s) not in the PDF: the server gives a card's token only when it "
            "makes the card";
  }
  if (!a.pins_out.empty() && s.require_pin) {
    text += issued > 0 ? "\nPINs of the new cards written to " + a.pins_out
                       : "\nno new PINs (" + a.pins_out + " has only its header)";
  }
  print(common,
        {{"issued", issued},
         {"existing", existing},
         {"declined", declines.size()},
         {"issued_cents", issued_cents},
         {"remaining_budget_cents", s.remaining_cents},
         {"existing_refs", std::move(existing_refs)}},
        text);
  return declines.empty() ? exit_ok : exit_declined;
}

// The file's lines; throws UsageError when the file or its header is unusable.
std::vector<Line> read_lines(const IssueArgs& a, std::vector<std::string>& problems) {
  CsvFile file = parse_csv(read_csv_file(a.csv), limits::cards_per_programme_max);
  if (!file.error.empty()) throw UsageError{"--csv: " + file.error};
  std::vector<Line> lines;
  problems = check_lines(file, lines);
  return lines;
}

// The outputs, opened before anything is issued, so an unwritable path costs nothing.
struct Outputs {
  std::optional<api::PdfSheetWriter> pdf;
  std::optional<PinsFile> pins;
  Outputs(const IssueArgs& a, bool require_pin) {
    if (!a.out.empty()) {
      auto writer = api::PdfSheetWriter::create(a.out);
      if (!writer.ok()) throw UsageError{"--out: " + writer.status().message()};
      pdf.emplace(std::move(writer).value());
    }
    if (require_pin) pins.emplace(a.pins_out);
  }
  PinsFile* pins_file() { return pins ? &*pins : nullptr; }
  [[nodiscard]] Status close_pins() { return pins ? pins->close() : Status(); }
};

void require_pins_out(const ProgrammeInfo& p, const IssueArgs& a) {
  if (p.require_pin && a.pins_out.empty()) {
    throw UsageError{"programme " + p.id + " requires PINs: give --pins-out FILE to receive them"};
  }
}

int bulk_issue_local(const Common& common, const IssueArgs& a) {
  std::vector<std::string> problems;
  std::vector<Line> lines = read_lines(a, problems);
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  auto programme = engine::find_programme((*node)->store(), a.programme);
  if (!programme.ok()) return report_status(common, programme.status());
  if (!programme->has_value()) return print_decline(common, engine::Code::not_found);
  const engine::Programme& p = **programme;
  ProgrammeInfo info = info_of(api::programme_json(p));
  require_pins_out(info, a);
  Status marked = mark_existing((*node)->store(), p.id, lines);
  if (!marked.ok()) throw UsageError{marked.to_string()};
  check_budget(lines, info, problems);
  if (!problems.empty()) return refuse_file(problems, a);
  Outputs out(a, p.require_pin);
  std::vector<std::string> declines = issue_new(**node, p, lines, out.pins_file());
  Status s = out.close_pins();
  if (s.ok() && out.pdf) {
    s = write_pdf(lines, *out.pdf, [&](const Line& l) -> StatusOr<std::optional<api::CardFace>> {
      const std::optional<CardId>& id = l.issued ? l.issued : l.existing;
      if (!id) return std::optional<api::CardFace>();
      BUONI_ASSIGN_OR_RETURN(auto card, engine::find_card((*node)->store(), *id));
      if (!card) return corruption("an issued card has no record");
      return std::optional(card_face(*card, p, (*node)->signing_key(), public_url()));
    });
  }
  if (!s.ok()) return report_status(common, s);
  auto after = engine::find_programme((*node)->store(), a.programme);
  if (!after.ok() || !after->has_value())
    return report_status(common, after.ok() ? corruption("programme vanished") : after.status());
  return summarise(common, lines, declines, a,
                   {(*after)->budget_cents - (*after)->issued_cents, p.require_pin, 0});
}

// ---- --server ----------------------------------------------------------------

// The Idempotency-Key of a line: the same programme, reference and amount
// give the same key, so a re-run of the file is answered, not issued again.
std::string line_key(const std::string& programme, const Line& l) {
  Hash32 h = blake2b_256(programme + "\n" + l.ref + "\n" + std::to_string(l.amount_cents));
  return "bulk-" + to_hex(h).substr(0, 48);
}

// One run of the file through the server: workers take lines in turn.
struct RemoteRun {
  const Common& common;
  const ProgrammeInfo& programme;
  std::vector<Line>& lines;
  PinsFile* pins;
  std::vector<std::size_t> todo;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;  // guards what follows, the lines' results and the PINs file
  std::size_t handled = 0;
  std::vector<std::string> declines;
  std::optional<Status> failure;     // the first network failure
  std::optional<ApiAnswer> refused;  // the first answer that stops the run (key, server)

  void fail(Status s) {
    std::lock_guard lock(mutex);
    if (!failure && !refused) failure = std::move(s);
    stop = true;
  }
  void record(Line& l, const ApiAnswer& answer);
};

void RemoteRun::record(Line& l, const ApiAnswer& answer) {
  std::lock_guard lock(mutex);
  int code = exit_code_of(answer);
  if (code == exit_ok) {
    auto id = parse_card_number(field(answer.body, "id")).id;
    (answer.replayed ? l.existing : l.issued) = id;
    l.number = field(answer.body, "number");
    l.qr_text = field(answer.body, "token");
    l.link = field(answer.body, "link");
    l.face_cents = int_of(answer.body, "amount_cents");
    std::string pin = field(answer.body, "pin");
    if (pins && !pin.empty() && !answer.replayed) {
      pins->put(csv_field(l.ref) + "," + l.number + "," + pin + "\n");
    }
  } else if (answer.error_code() == "already_issued") {
    const json::value* e = answer.body.if_contains("error");
    l.existing = parse_card_number(e && e->is_object() ? field(e->get_object(), "card_id") : "").id;
    if (!l.existing) l.existing = CardId{};  // the server named no card; it has one all the same
  } else if (code == exit_failed) {
    if (!failure && !refused) refused = answer;
    stop = true;
  } else {
    declines.push_back("line " + std::to_string(l.line) + ": declined " + answer.error_code());
  }
  progress_bar("issue", ++handled, todo.size());
}

void remote_worker(RemoteRun& run) {
  auto remote = Remote::open(run.common);
  if (!remote.ok()) return run.fail(remote.status());
  for (;;) {
    std::size_t k = run.next++;
    if (run.stop || k >= run.todo.size()) return;
    Line& l = run.lines[run.todo[k]];
    json::object body{{"programme", run.programme.id},
                      {"beneficiary_ref", l.ref},
                      {"amount_cents", l.amount_cents}};
    auto answer =
        (*remote)->call({"POST", "/v1/cards", std::move(body), line_key(run.programme.id, l)});
    if (!answer.ok()) return run.fail(answer.status());
    run.record(l, *answer);
  }
}

std::string no_text(const json::object&) {
  return "";
}

// Issues every line through the server; 0 when all were answered.
int issue_remote(RemoteRun& run) {
  for (std::size_t i = 0; i < run.lines.size(); ++i) run.todo.push_back(i);
  std::vector<std::thread> workers;
  std::size_t n = std::min(bulk_connections, run.todo.size());
  for (std::size_t i = 0; i < n; ++i) workers.emplace_back([&run] { remote_worker(run); });
  for (auto& w : workers) w.join();
  Status closed = run.pins ? run.pins->close() : Status();
  if (run.failure) return report_status(run.common, *run.failure);
  if (run.refused) return print_answer(run.common, *run.refused, no_text);
  if (!closed.ok()) return report_status(run.common, closed);
  return exit_ok;
}

// GET /v1/programmes/{id}: the programme, or the exit code of why not.
std::variant<ProgrammeInfo, int> fetch_programme(const Common& common, Remote& remote,
                                                 const std::string& id) {
  auto answer = remote.call({"GET", "/v1/programmes/" + path_segment(id)});
  if (!answer.ok()) return report_status(common, answer.status());
  if (!answer->ok()) return print_answer(common, *answer, no_text);
  return info_of(answer->body);
}

int bulk_issue_remote(const Common& common, const IssueArgs& a) {
  std::vector<std::string> problems;
  std::vector<Line> lines = read_lines(a, problems);
  auto remote = Remote::open(common);
  if (!remote.ok()) return report_status(common, remote.status());
  auto fetched = fetch_programme(common, **remote, a.programme);
  if (const int* code = std::get_if<int>(&fetched)) return *code;
  const ProgrammeInfo p = std::get<ProgrammeInfo>(fetched);
  require_pins_out(p, a);
  if (p.cards == 0) check_budget(lines, p, problems);  // else unknown which lines are new
  if (!problems.empty()) return refuse_file(problems, a);
  Outputs out(a, p.require_pin);
  RemoteRun run{common, p, lines, out.pins_file()};
  if (int code = issue_remote(run); code != exit_ok) return code;
  Summary summary{0, p.require_pin, 0};
  if (out.pdf) {
    std::string url = public_url();
    Status s = write_pdf(lines, *out.pdf, [&](const Line& l) {
      if (l.qr_text.empty()) {
        if (l.existing) ++summary.unprinted;
        return StatusOr<std::optional<api::CardFace>>(std::nullopt);
      }
      api::CardFace face{p.name,   "",        l.face_cents,        p.valid_until,
                         l.number, l.qr_text, url + "/c/" + l.link};
      return StatusOr<std::optional<api::CardFace>>(std::optional(face));
    });
    if (!s.ok()) return report_status(common, s);
  }
  auto after = fetch_programme(common, **remote, a.programme);
  if (const int* code = std::get_if<int>(&after)) return *code;
  const ProgrammeInfo& now = std::get<ProgrammeInfo>(after);
  summary.remaining_cents = now.budget_cents - now.issued_cents;
  return summarise(common, lines, run.declines, a, summary);
}

}  // namespace
}  // namespace buoni::tools

namespace buoni::tools {

void register_issue(CLI::App& app, Common& common, int& exit_code) {
  auto a = std::make_shared<IssueArgs>();
  auto* cmd = app.add_subcommand("issue",
                                 "issue cards in bulk from a CSV "
                                 "(beneficiary_ref,amount_cents); safe to re-run");
  cmd->add_option("--programme", a->programme, "programme id")->required();
  cmd->add_option("--csv", a->csv, "the CSV file")->required();
  cmd->add_option("--out", a->out, "write an A4 PDF of the cards (8 a page) for printing");
  cmd->add_option("--pins-out", a->pins_out, "write new PINs here (mode 0600; must not exist)");
  allow_server(cmd);
  cmd->callback([a, &common, &exit_code] {
    if (!common.remote()) check_id_arg("--programme", a->programme);  // else the server says
    exit_code = common.remote() ? bulk_issue_remote(common, *a) : bulk_issue_local(common, *a);
  });
}

}  // namespace buoni::tools
