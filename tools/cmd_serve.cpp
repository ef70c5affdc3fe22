// buoni serve: the HTTP API (api/server.h) over a data directory.
#include "tools/commands.h"

namespace buoni::tools {

void register_serve(CLI::App& app, Common& common, int& exit_code) {
  auto* cmd = app.add_subcommand("serve", "serve the HTTP API");
  cmd->callback([&common, &exit_code] {
    (void)common;
    exit_code = exit_failed;
  });
}

}  // namespace buoni::tools
