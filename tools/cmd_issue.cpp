// buoni issue: bulk issuance from a CSV (beneficiary_ref,amount_cents[,...]).
//
// The whole file is validated first; any bad line is reported with its line
// number and nothing is issued. Re-running the same file issues nothing
// twice: references that already have a card are listed as existing. New
// PINs go to --pins-out (mode 0600) line by line as cards are acknowledged.
#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>

#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/pin.h"
#include "engine/queries.h"
#include "engine/validate.h"
#include "tools/card_face.h"
#include "tools/commands.h"
#include "tools/csv.h"

namespace buoni::tools {

namespace {

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
};

std::string read_csv_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError{"--csv: cannot read " + path};
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().size() > limits::csv_bytes_max) throw UsageError{"--csv: file over 64 MiB"};
  return text.str();
}

int column(const CsvFile& f, std::string_view name) {
  for (std::size_t i = 0; i < f.header.size(); ++i) {
    if (f.header[i] == name) return static_cast<int>(i);
  }
  throw UsageError{"--csv: the header has no '" + std::string(name) +
                   "' column (it needs beneficiary_ref,amount_cents)"};
}

// Checks every line; returns the problems, each "line N: ...".
std::vector<std::string> check_lines(const CsvFile& f, const engine::Store& store,
                                     const engine::Programme& p, std::vector<Line>& lines) {
  int ref_col = column(f, "beneficiary_ref"), amount_col = column(f, "amount_cents");
  std::vector<std::string> problems;
  std::map<std::string, std::size_t> seen;
  engine::Cents new_total = 0;
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
    auto existing = engine::find_beneficiary_card(store, p.id, l.ref);
    if (!existing.ok()) throw UsageError{existing.status().to_string()};
    l.existing = *existing;
    if (!l.existing) new_total += l.amount_cents;
    lines.push_back(std::move(l));
  }
  if (new_total > p.budget_cents - p.issued_cents) {
    problems.push_back("the new cards total " + std::to_string(new_total) +
                       " cents, over the remaining budget of " +
                       std::to_string(p.budget_cents - p.issued_cents) + " cents");
  }
  return problems;
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

Status write_pdf(Node& node, const engine::Programme& p, const std::vector<Line>& lines,
                 api::PdfSheetWriter& writer) {
  std::string url = public_url();
  std::size_t done = 0;
  for (const auto& l : lines) {
    const std::optional<CardId>& id = l.issued ? l.issued : l.existing;
    if (!id) continue;
    BUONI_ASSIGN_OR_RETURN(auto card, engine::find_card(node.store(), *id));
    if (!card) return corruption("an issued card has no record");
    BUONI_RETURN_IF_ERROR(writer.add(card_face(*card, p, node.signing_key(), url)));
    progress_bar("pdf", ++done, lines.size());
  }
  return writer.finish();
}

int summarise(const Common& common, Node& node, const std::vector<Line>& lines,
              const std::vector<std::string>& declines, const IssueArgs& a) {
  std::int64_t issued = 0, existing = 0;
  engine::Cents issued_cents = 0;
  boost::json::array existing_refs;
  for (const auto& l : lines) {
    if (l.issued) {
      ++issued;
      issued_cents += l.amount_cents;
    } else if (l.existing) {
      ++existing;
      existing_refs.emplace_back(l.ref);
    }
  }
  auto p = engine::find_programme(node.store(), a.programme);
  if (!p.ok() || !p->has_value())
    return report_status(common, p.ok() ? corruption("programme vanished") : p.status());
  engine::Cents remaining = (*p)->budget_cents - (*p)->issued_cents;
  for (const auto& d : declines) std::cerr << "buoni: " << d << "\n";
  std::string text = "issued " + std::to_string(issued) + " cards (" +
                     std::to_string(issued_cents) + " cents), " + std::to_string(existing) +
                     " already existed, " + std::to_string(declines.size()) +
                     " declined; remaining budget " + std::to_string(remaining) + " cents";
  if (!a.out.empty()) text += "\ncards written to " + a.out;
  if (!a.pins_out.empty() && (*p)->require_pin) {
    text += issued > 0 ? "\nPINs of the new cards written to " + a.pins_out
                       : "\nno new PINs (" + a.pins_out + " has only its header)";
  }
  print(common,
        {{"issued", issued},
         {"existing", existing},
         {"declined", declines.size()},
         {"issued_cents", issued_cents},
         {"remaining_budget_cents", remaining},
         {"existing_refs", std::move(existing_refs)}},
        text);
  return declines.empty() ? exit_ok : exit_declined;
}

int bulk_issue(const Common& common, const IssueArgs& a) {
  CsvFile file = parse_csv(read_csv_file(a.csv), limits::cards_per_programme_max);
  if (!file.error.empty()) throw UsageError{"--csv: " + file.error};
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  auto programme = engine::find_programme((*node)->store(), a.programme);
  if (!programme.ok()) return report_status(common, programme.status());
  if (!programme->has_value()) return print_decline(common, engine::Code::not_found);
  const engine::Programme& p = **programme;
  if (p.require_pin && a.pins_out.empty()) {
    throw UsageError{"programme " + p.id + " requires PINs: give --pins-out FILE to receive them"};
  }
  std::vector<Line> lines;
  std::vector<std::string> problems = check_lines(file, (*node)->store(), p, lines);
  if (!problems.empty()) {
    for (const auto& line : problems) std::cerr << "buoni: --csv " << line << "\n";
    std::cerr << "buoni: usage: " << problems.size() << " problem(s) in " << a.csv
              << "; nothing was issued\n";
    return exit_usage;
  }
  // Open both outputs before issuing anything, so an unwritable path costs nothing.
  std::optional<api::PdfSheetWriter> pdf;
  if (!a.out.empty()) {
    auto writer = api::PdfSheetWriter::create(a.out);
    if (!writer.ok()) throw UsageError{"--out: " + writer.status().message()};
    pdf.emplace(std::move(writer).value());
  }
  std::optional<PinsFile> pins;
  if (p.require_pin) pins.emplace(a.pins_out);
  std::vector<std::string> declines = issue_new(**node, p, lines, pins ? &*pins : nullptr);
  if (pins) {
    Status s = pins->close();
    if (!s.ok()) return report_status(common, s);
  }
  if (pdf) {
    Status s = write_pdf(**node, p, lines, *pdf);
    if (!s.ok()) return report_status(common, s);
  }
  return summarise(common, **node, lines, declines, a);
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
  cmd->callback([a, &common, &exit_code] { exit_code = bulk_issue(common, *a); });
}

}  // namespace buoni::tools
