#include "tools/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "api/error_table.h"
#include "api/render.h"
#include "engine/calendar.h"
#include "engine/limits.h"
#include "engine/validate.h"
#include "tools/card_ref.h"

namespace buoni::tools {

namespace json = boost::json;

engine::Cents parse_cents(std::string_view flag, std::string_view text, engine::Cents max_cents,
                          bool allow_zero) {
  std::string why = std::string(flag) +
                    " takes whole cents (digits only, e.g. 2500 for EUR 25.00), not '" +
                    std::string(text) + "'";
  if (text.empty() || text.size() > 15) throw UsageError{why};
  engine::Cents v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') throw UsageError{why};
    v = v * 10 + (c - '0');
  }
  if (v == 0 && !allow_zero) throw UsageError{std::string(flag) + " must be more than 0"};
  if (v > max_cents) {
    throw UsageError{std::string(flag) + " is over the limit of " + std::to_string(max_cents) +
                     " cents"};
  }
  return v;
}

std::int64_t parse_count(std::string_view flag, std::string_view text, std::int64_t max) {
  std::string why = std::string(flag) + " takes a whole number from 1 to " + std::to_string(max);
  if (text.empty() || text.size() > 12) throw UsageError{why};
  std::int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') throw UsageError{why};
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > max) throw UsageError{why};
  return v;
}

engine::Day parse_date(std::string_view flag, std::string_view text) {
  auto day = engine::parse_day(text);
  if (!day)
    throw UsageError{std::string(flag) + " takes a date YYYY-MM-DD, not '" + std::string(text) +
                     "'"};
  return *day;
}

CardId parse_card(std::string_view flag, std::string_view text) {
  auto parsed = parse_card_number(text);
  if (!parsed.id) {
    throw UsageError{std::string(flag) + ": " +
                     std::string(card_number_error_message(parsed.error))};
  }
  return *parsed.id;
}

CardId card_arg(const Common& common, std::string_view text) {
  if (!looks_like_token(text)) return parse_card("--card", text);
  auto keys = load_public_keys(common.dir());
  if (!keys.ok()) throw UsageError{"--card: cannot check the token: " + keys.status().to_string()};
  return resolve_card("--card", text, *keys, engine::day_of(engine::SystemClock().now_ms()));
}

void check_id_arg(std::string_view flag, std::string_view id) {
  if (!engine::valid_object_id(id)) {
    throw UsageError{std::string(flag) + " takes 1 to " + std::to_string(limits::id_length_max) +
                     " characters of A-Z a-z 0-9 _ . -"};
  }
}

void check_name_arg(std::string_view flag, std::string_view name) {
  if (!engine::valid_name(name)) {
    throw UsageError{std::string(flag) + " takes 1 to " + std::to_string(limits::name_length_max) +
                     " bytes of UTF-8 text without control characters"};
  }
}

void check_reference_arg(std::string_view flag, std::string_view reference) {
  if (!engine::valid_reference(reference)) {
    throw UsageError{std::string(flag) + " takes at most " +
                     std::to_string(limits::reference_length_max) +
                     " bytes of UTF-8 text without control characters"};
  }
}

void check_beneficiary_ref_arg(std::string_view flag, std::string_view ref) {
  if (!engine::valid_beneficiary_ref(ref)) {
    throw UsageError{std::string(flag) + " takes 1 to " +
                     std::to_string(limits::beneficiary_ref_length_max) +
                     " printable ASCII characters"};
  }
}

void check_idempotency_key_arg(std::string_view key) {
  if (!key.empty() && !engine::valid_idempotency_key(key)) {
    throw UsageError{"--idempotency-key takes 1-64 characters of A-Z a-z 0-9 _ -"};
  }
}

std::string read_input_file(std::string_view flag, const std::string& path,
                            std::size_t max_bytes) {
  const std::string cannot = std::string(flag) + ": cannot read " + path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw UsageError{cannot + ": it is a directory"};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError{cannot};
  std::string text(max_bytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw UsageError{cannot};
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > max_bytes) {
    throw UsageError{std::string(flag) + ": " + path + " is over " + std::to_string(max_bytes) +
                     " bytes"};
  }
  return text;
}

std::string printable(std::string_view text) {
  const bool utf8 = engine::valid_utf8(text);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f || (!utf8 && u >= 0x80)) ? '?' : c;
  }
  return out;
}

void progress_bar(std::string_view label, std::uint64_t done, std::uint64_t total) {
  if (!isatty(STDERR_FILENO) || total == 0) return;
  constexpr int width = 40;
  int filled = static_cast<int>(width * std::min(done, total) / total);
  std::fprintf(stderr, "\r%.*s [%-*s] %llu/%llu", static_cast<int>(label.size()), label.data(),
               width, std::string(filled, '#').c_str(), static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total));
  if (done >= total) std::fputc('\n', stderr);
}

void print(const Common& common, const json::object& object, std::string_view text) {
  if (common.json) {
    std::cout << json::serialize(object) << "\n";
  } else {
    std::cout << text;
    if (!text.empty() && text.back() != '\n') std::cout << "\n";
  }
  std::cout.flush();
}

int report_status(const Common& common, const Status& status) {
  api::ErrorInfo info = api::error_info(status);
  const std::string message = printable(status.to_string());
  if (common.json) std::cout << json::serialize(api::error_json(info.code, message)) << "\n";
  std::cerr << "buoni: " << message << "\n";
  bool usage =
      status.code() == StatusCode::not_found || status.code() == StatusCode::invalid_argument;
  return usage ? exit_usage : exit_failed;
}

namespace {

std::string with_replay_note(std::string text, bool replayed) {
  if (replayed) text += "\n(replayed: this idempotency key was used before; nothing changed)";
  return text;
}

int print_outcome_decline(const Common& common, const engine::Outcome& o) {
  bool usage = o.code == engine::Code::invalid_field || o.code == engine::Code::invalid_amount;
  return print_error(common, api::error_json(o.code, o), usage ? exit_usage : exit_declined);
}

}  // namespace

std::string field(const json::object& answer, std::string_view name) {
  const json::value* v = answer.if_contains(name);
  if (!v) return "";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  if (v->is_bool()) return v->get_bool() ? "true" : "false";
  if (v->is_null()) return "";
  return json::serialize(*v);
}

int print_ok(const Common& common, const json::object& answer, JsonText text, bool replayed) {
  print(common, answer, with_replay_note(text(answer), replayed));
  return exit_ok;
}

int print_error(const Common& common, const json::object& answer, int exit_code,
                std::string_view what) {
  if (common.json) std::cout << json::serialize(answer) << "\n";
  json::object error;
  if (const json::value* e = answer.if_contains("error"); e && e->is_object()) {
    error = e->get_object();
  }
  std::string line =
      "buoni: " + std::string(what) + ": " + field(error, "code") + ": " + field(error, "message");
  if (error.contains("balance_cents")) {
    line += " (balance " + field(error, "balance_cents") + " cents)";
  }
  std::cerr << printable(line) << "\n";
  return exit_code;
}

int print_result(const Common& common, const engine::Command& command,
                 const StatusOr<engine::Result>& result, JsonText text, const Extend& extend) {
  if (!result.ok()) return report_status(common, result.status());
  const engine::Outcome& o = result->outcome;
  if (!o.ok()) return print_outcome_decline(common, o);
  json::object body = api::outcome_json(command, o);
  if (extend) extend(*result, body);
  return print_ok(common, body, text, result->replayed);
}

int print_result(const Common& common, const engine::Command& command,
                 const StatusOr<engine::Result>& result, TextOf text) {
  if (!result.ok()) return report_status(common, result.status());
  const engine::Outcome& o = result->outcome;
  if (!o.ok()) return print_outcome_decline(common, o);
  print(common, api::outcome_json(command, o),
        with_replay_note(text(command, o), result->replayed));
  return exit_ok;
}

int print_decline(const Common& common, engine::Code code) {
  engine::Outcome o;
  o.code = code;
  return print_outcome_decline(common, o);
}

int run_command(const Common& common, engine::Request request, JsonText text) {
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  engine::Command command = request.command;
  auto result = (*node)->engine().execute(std::move(request));
  return print_result(common, command, result, text);
}

namespace {
std::set<const CLI::App*>& server_commands() {
  static std::set<const CLI::App*> commands;
  return commands;
}
}  // namespace

void allow_server(const CLI::App* command) {
  server_commands().insert(command);
}

bool takes_server(const CLI::App* command) {
  return server_commands().contains(command);
}

}  // namespace buoni::tools
