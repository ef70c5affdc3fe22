// buoni key show | key rotate
#include <optional>

#include "tools/commands.h"

namespace buoni::tools {

namespace {

boost::json::object keys_json(const std::vector<VerifyKey>& keys) {
  boost::json::array items;
  for (const auto& k : keys) {
    items.push_back({{"key_id", k.key_id}, {"public_key", to_hex(k.public_key)}});
  }
  return {{"keys", std::move(items)}};
}

// A missing or empty data directory is a usage error (exit 2), as for every
// command; nullopt when `common` names a data directory.
std::optional<int> refuse_missing_dir(const Common& common) {
  if (data_dir_exists(common.dir())) return std::nullopt;
  return report_status(common, not_found(common.data + " is not a buoni data directory (run "
                                                       "`buoni init`)"));
}

}  // namespace

void register_key(CLI::App& app, Common& common, int& exit_code) {
  auto* key = app.add_subcommand("key", "the engine's signing keys");
  key->require_subcommand(1);
  auto* show = key->add_subcommand("show",
                                   "print the public key set (the file --public-keys "
                                   "reads)");
  show->callback([&common, &exit_code] {
    if (auto refused = refuse_missing_dir(common)) {
      exit_code = *refused;
      return;
    }
    auto keys = load_public_keys(common.dir());
    if (!keys.ok()) {
      exit_code = report_status(common, keys.status());
      return;
    }
    const auto& public_keys = *keys;
    print(common, keys_json(public_keys), format_public_keys(public_keys));
    exit_code = exit_ok;
  });
  auto* rotate = key->add_subcommand("rotate",
                                     "make a new signing key; older tokens keep "
                                     "verifying (restart a running server)");
  rotate->callback([&common, &exit_code] {
    if (auto refused = refuse_missing_dir(common)) {
      exit_code = *refused;
      return;
    }
    auto fresh = rotate_signing_key(common.dir());
    if (!fresh.ok()) {
      exit_code = report_status(common, fresh.status());
      return;
    }
    print(common, {{"key_id", fresh->key_id}, {"public_key", to_hex(fresh->public_key)}},
          "new signing key " + std::to_string(fresh->key_id) + ": " + to_hex(fresh->public_key));
    exit_code = exit_ok;
  });
}

}  // namespace buoni::tools
