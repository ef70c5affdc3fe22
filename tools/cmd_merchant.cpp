// buoni merchant add | list
#include <iostream>

#include "api/render.h"
#include "engine/queries.h"
#include "engine/validate.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

std::string added_text(const engine::Command& c, const engine::Outcome&) {
  return "added shop " + std::get<engine::AddMerchant>(c).id;
}

struct AddArgs {
  std::string id, name, vat, key;
  std::vector<std::string> programmes;
};

void add_add(CLI::App& merchant, Common& common, int& exit_code) {
  auto args = std::make_shared<AddArgs>();
  auto* cmd = merchant.add_subcommand("add", "register a shop; prints its API key once");
  cmd->add_option("--id", args->id, "shop id")->required();
  cmd->add_option("--name", args->name, "shop name")->required();
  cmd->add_option("--vat-number", args->vat, "Partita IVA (11 digits, check digit verified)")
      ->required();
  cmd->add_option("--programme", args->programmes, "programme it takes (repeat for more)")
      ->required();
  cmd->add_option("--idempotency-key", args->key, "makes a retry safe");
  cmd->callback([args, &common, &exit_code] {
    if (!engine::valid_vat_number(args->vat)) {
      throw UsageError{"--vat-number '" + args->vat + "' is not a valid Partita IVA"};
    }
    auto node = Node::open(common.dir());
    if (!node.ok()) {
      exit_code = report_status(common, node.status());
      return;
    }
    std::string api_key = make_api_key("mk_", (*node)->random());
    engine::AddMerchant c{args->id, args->name, args->vat, args->programmes, api_key_hash(api_key)};
    auto result = (*node)->engine().execute({engine::Caller::admin(), args->key, c});
    if (result.ok() && result->outcome.ok() && !result->replayed) {
      boost::json::object body = api::outcome_json(c, result->outcome);
      body["api_key"] = api_key;
      print(common, body,
            "added shop " + c.id + "\napi_key " + api_key +
                "\n(shown once: store it now; only its hash is kept)");
      exit_code = exit_ok;
      return;
    }
    exit_code = print_result(common, c, result, added_text);
  });
}

void add_list(CLI::App& merchant, Common& common, int& exit_code) {
  auto* cmd = merchant.add_subcommand("list", "list shops");
  cmd->callback([&common, &exit_code] {
    auto reader = Reader::open(common.dir());
    if (!reader.ok()) {
      exit_code = report_status(common, reader.status());
      return;
    }
    boost::json::array items;
    std::string text;
    std::string after;
    for (;;) {
      auto page = engine::list_merchants((*reader)->store(), after, 256);
      if (!page.ok()) {
        exit_code = report_status(common, page.status());
        return;
      }
      for (const auto& m : *page) {
        items.push_back(api::merchant_json(m));
        text += m.id + "\t" + m.vat_number + "\t" + m.name + "\n";
      }
      if (page->size() < 256) break;
      after = page->back().id;
    }
    print(common, {{"merchants", std::move(items)}}, text.empty() ? "no shops" : text);
    exit_code = exit_ok;
  });
}

}  // namespace

void register_merchant(CLI::App& app, Common& common, int& exit_code) {
  auto* merchant = app.add_subcommand("merchant", "register and list shops");
  merchant->require_subcommand(1);
  add_add(*merchant, common, exit_code);
  add_list(*merchant, common, exit_code);
}

}  // namespace buoni::tools
