// buoni merchant add | list | rotate-key
#include <iostream>

#include "api/render.h"
#include "engine/queries.h"
#include "engine/validate.h"
#include "tools/commands.h"
#include "tools/key_qr.h"
#include "tools/remote.h"

namespace buoni::tools {

namespace {

namespace json = boost::json;

// The human forms, from the API's answers (local and --server mode alike).
std::string added_text(const json::object& m) {
  std::string text = "added shop " + field(m, "id");
  if (m.contains("api_key")) {
    text +=
        "\napi_key " + field(m, "api_key") + "\n(shown once: store it now; only its hash is kept)";
  }
  return text;
}

// With --key-qr: the key's QR after the text, for the till page to scan.
JsonText with_key_qr(JsonText text, bool qr) {
  return [text = std::move(text), qr](const json::object& m) {
    std::string out = text(m);
    if (qr && m.contains("api_key")) out += "\n" + terminal_qr(field(m, "api_key"));
    return out;
  };
}

std::string rotated_text(const json::object& m) {
  std::string text =
      "new key for shop " + field(m, "id") + " (the old key and its till sessions no longer work)";
  if (m.contains("api_key")) {
    text +=
        "\napi_key " + field(m, "api_key") + "\n(shown once: store it now; only its hash is kept)";
  }
  return text;
}

std::string list_text(const json::object& answer) {
  std::string text;
  if (const json::value* items = answer.if_contains("merchants"); items && items->is_array()) {
    for (const json::value& item : items->get_array()) {
      if (!item.is_object()) continue;
      const json::object& m = item.get_object();
      text += field(m, "id") + "\t" + field(m, "vat_number") + "\t" + field(m, "name") + "\n";
    }
  }
  return text.empty() ? "no shops" : text;
}

struct AddArgs {
  std::string id, name, vat, key;
  std::vector<std::string> programmes;
  bool key_qr = false;
};

int add_remote(const Common& common, const AddArgs& a) {
  json::array programmes;
  for (const auto& p : a.programmes) programmes.emplace_back(p);
  json::object body{
      {"id", a.id}, {"name", a.name}, {"vat_number", a.vat}, {"programmes", std::move(programmes)}};
  return run_remote(common, {"POST", "/v1/merchants", std::move(body), a.key},
                    with_key_qr(added_text, a.key_qr));
}

int add_local(const Common& common, const AddArgs& a) {
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  std::string api_key = make_api_key("mk_", (*node)->random());
  engine::AddMerchant c{a.id, a.name, a.vat, a.programmes, api_key_hash(api_key)};
  auto result = (*node)->engine().execute({engine::Caller::admin(), a.key, c});
  return print_result(common, c, result, with_key_qr(added_text, a.key_qr),
                      [&api_key](const engine::Result& r, json::object& body) {
                        if (!r.replayed) body["api_key"] = api_key;
                      });
}

void add_add(CLI::App& merchant, Common& common, int& exit_code) {
  auto args = std::make_shared<AddArgs>();
  auto* cmd = merchant.add_subcommand("add", "register a shop; prints its API key once");
  allow_server(cmd);
  cmd->add_option("--id", args->id, "shop id")->required();
  cmd->add_option("--name", args->name, "shop name")->required();
  cmd->add_option("--vat-number", args->vat, "Partita IVA (11 digits, check digit verified)")
      ->required();
  cmd->add_option("--programme", args->programmes, "programme it takes (repeat for more)")
      ->required();
  cmd->add_option("--idempotency-key", args->key, "makes a retry safe");
  cmd->add_flag("--key-qr", args->key_qr,
                "also draw the key as a QR code (the till page scans it)");
  cmd->callback([args, &common, &exit_code] {
    if (!common.remote()) {  // the server names a bad field itself (400 invalid_field)
      check_id_arg("--id", args->id);
      check_name_arg("--name", args->name);
      for (const std::string& p : args->programmes) check_id_arg("--programme", p);
      check_idempotency_key_arg(args->key);
    }
    if (!engine::valid_vat_number(args->vat)) {
      throw UsageError{"--vat-number '" + args->vat + "' is not a valid Partita IVA"};
    }
    exit_code = common.remote() ? add_remote(common, *args) : add_local(common, *args);
  });
}

int rotate_remote(const Common& common, const AddArgs& a) {
  return run_remote(common,
                    {"POST", "/v1/merchants/" + path_segment(a.id) + "/rotate-key", {}, a.key},
                    with_key_qr(rotated_text, a.key_qr));
}

int rotate_local(const Common& common, const AddArgs& a) {
  auto node = Node::open(common.dir());
  if (!node.ok()) return report_status(common, node.status());
  std::string api_key = make_api_key("mk_", (*node)->random());
  engine::RotateMerchantKey c{a.id, api_key_hash(api_key)};
  auto result = (*node)->engine().execute({engine::Caller::admin(), a.key, c});
  return print_result(common, c, result, with_key_qr(rotated_text, a.key_qr),
                      [&api_key](const engine::Result& r, json::object& body) {
                        if (!r.replayed) body["api_key"] = api_key;
                      });
}

void add_rotate_key(CLI::App& merchant, Common& common, int& exit_code) {
  auto args = std::make_shared<AddArgs>();
  auto* cmd = merchant.add_subcommand(
      "rotate-key", "give a shop a new API key (prints it once); the old one stops at once");
  allow_server(cmd);
  cmd->add_option("--id", args->id, "shop id")->required();
  cmd->add_option("--idempotency-key", args->key, "makes a retry safe");
  cmd->add_flag("--key-qr", args->key_qr,
                "also draw the key as a QR code (the till page scans it)");
  cmd->callback([args, &common, &exit_code] {
    if (!common.remote()) {
      check_id_arg("--id", args->id);
      check_idempotency_key_arg(args->key);
    }
    exit_code = common.remote() ? rotate_remote(common, *args) : rotate_local(common, *args);
  });
}

// Every shop, page by page, through GET /v1/merchants.
int list_remote(const Common& common) {
  auto remote = Remote::open(common);
  if (!remote.ok()) return report_status(common, remote.status());
  json::array items;
  std::string after;
  for (;;) {
    std::string target = "/v1/merchants?limit=1000";
    if (!after.empty()) target += "&after=" + path_segment(after);
    auto answer = (*remote)->call({"GET", target});
    if (!answer.ok()) return report_status(common, answer.status());
    if (!answer->ok()) return print_answer(common, *answer, list_text);
    if (const json::value* page = answer->body.if_contains("merchants"); page && page->is_array()) {
      for (const json::value& m : page->get_array()) items.push_back(m);
    }
    after = field(answer->body, "next");
    if (after.empty()) break;
  }
  return print_ok(common, {{"merchants", std::move(items)}}, list_text, false);
}

int list_local(const Common& common) {
  auto reader = Reader::open(common.dir());
  if (!reader.ok()) return report_status(common, reader.status());
  json::array items;
  std::string after;
  for (;;) {
    auto page = engine::list_merchants((*reader)->store(), after, 256);
    if (!page.ok()) return report_status(common, page.status());
    for (const auto& m : *page) items.push_back(api::merchant_json(m));
    if (page->size() < 256) break;
    after = page->back().id;
  }
  return print_ok(common, {{"merchants", std::move(items)}}, list_text, false);
}

void add_list(CLI::App& merchant, Common& common, int& exit_code) {
  auto* cmd = merchant.add_subcommand("list", "list shops");
  allow_server(cmd);
  cmd->callback([&common, &exit_code] {
    exit_code = common.remote() ? list_remote(common) : list_local(common);
  });
}

}  // namespace

void register_merchant(CLI::App& app, Common& common, int& exit_code) {
  auto* merchant = app.add_subcommand("merchant", "register and list shops, rotate their keys");
  merchant->require_subcommand(1);
  add_add(*merchant, common, exit_code);
  add_list(*merchant, common, exit_code);
  add_rotate_key(*merchant, common, exit_code);
}

}  // namespace buoni::tools
