// buoni init: create the data directory, store, signing key and admin key.
#include <iostream>

#include "tools/commands.h"

namespace buoni::tools {

void register_init(CLI::App& app, Common& common, int& exit_code) {
  auto* cmd = app.add_subcommand("init",
                                 "create the store, signing key and admin key "
                                 "(the admin key is printed once)");
  cmd->callback([&common, &exit_code] {
    SystemRandom random;
    auto admin_key = init_data_dir(common.dir(), random);
    if (!admin_key.ok()) {
      exit_code = report_status(common, admin_key.status());
      if (admin_key.status().code() == StatusCode::already_exists) exit_code = exit_declined;
      return;
    }
    print(common, {{"data", common.data}, {"admin_key", *admin_key}},
          "initialised " + common.data + "\nadmin_key " + *admin_key +
              "\n(shown once: store it now; only its hash is kept)");
    exit_code = exit_ok;
  });
}

}  // namespace buoni::tools
