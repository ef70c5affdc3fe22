// buoni: the command-line tool. See README.md for every command.
#include <cstdlib>
#include <iostream>

#include "tools/commands.h"

// fontconfig (under cairo's text, when cards are rendered) keeps its caches
// for the life of the process; LeakSanitizer (BUONI_SANITIZE builds) would
// report them at exit. Nothing calls this in other builds.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libfontconfig.so\n";
}
// ...and without printing, at every exit, that the suppression was used:
// stderr carries one line per failure, which scripts and tests rely on.
extern "C" const char* __lsan_default_options() {
  return "print_suppressions=0";
}

namespace {
// CLI11 reports an unknown command as "A subcommand is required"; name it.
const char* unknown_command(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--data" || arg == "--server" || arg == "--key") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      if (sub->get_name() == arg) return nullptr;
    }
    return argv[i];
  }
  return nullptr;
}
// The command that ran (the deepest parsed subcommand).
const CLI::App* leaf_command(const CLI::App& app) {
  const CLI::App* at = &app;
  for (;;) {
    auto subs = at->get_subcommands();
    if (subs.empty()) return at;
    at = subs.front();
  }
}

std::string command_path(const CLI::App* command) {
  std::string path;
  for (const CLI::App* at = command; at && at->get_parent(); at = at->get_parent()) {
    path = at->get_name() + (path.empty() ? "" : " " + path);
  }
  return path;
}

// --server / --key: only for the commands that take them; the key from
// $BUONI_KEY when --key is not given. Runs before any command's callback.
void check_server_options(const CLI::App& app, buoni::tools::Common& common) {
  using buoni::tools::UsageError;
  bool data_given = app.get_option("--data")->count() > 0;
  if (!common.remote()) {
    if (!common.key.empty()) throw UsageError{"--key is for --server URL"};
    return;
  }
  const CLI::App* command = leaf_command(app);
  if (!buoni::tools::takes_server(command)) {
    throw UsageError{"buoni " + command_path(command) +
                     " does not take --server: it works on a data directory (--data DIR)"};
  }
  if (data_given) throw UsageError{"give --data DIR or --server URL, not both"};
  if (common.key.empty()) {
    const char* env = std::getenv("BUONI_KEY");
    if (env) common.key = env;
  }
  if (common.key.empty()) {
    throw UsageError{"--server needs the admin key: --key KEY or the BUONI_KEY variable"};
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace buoni::tools;
  CLI::App app{"buoni: food-aid voucher cards (buoni spesa) with a verifiable ledger", "buoni"};
  app.require_subcommand(1);
  app.fallthrough();
  Common common;
  app.add_option("--data", common.data, "data directory")->capture_default_str();
  app.add_flag("--json", common.json, "print the JSON object the HTTP API returns");
  app.add_option("--server", common.server,
                 "run through a running server's admin API (http[s]://HOST:PORT) instead of "
                 "--data; for programme, merchant, card (not render/verify) and issue");
  app.add_option("--key", common.key, "the admin key for --server (default: $BUONI_KEY)");
  app.parse_complete_callback([&app, &common] { check_server_options(app, common); });
  int exit_code = exit_ok;
  register_init(app, common, exit_code);
  register_programme(app, common, exit_code);
  register_merchant(app, common, exit_code);
  register_card(app, common, exit_code);
  register_redeem(app, common, exit_code);
  register_audit(app, common, exit_code);
  register_demo(app, common, exit_code);
  register_key(app, common, exit_code);
  register_issue(app, common, exit_code);
  register_serve(app, common, exit_code);
  register_reconcile(app, common, exit_code);
  register_settle(app, common, exit_code);
  register_export(app, common, exit_code);
  register_report(app, common, exit_code);
  register_backup(app, common, exit_code);
  if (const char* name = unknown_command(app, argc, argv)) {
    std::cerr << "buoni: usage: unknown command '" << printable(name) << "' (see buoni --help)\n";
    return exit_usage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help: CLI11 prints the right command's help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "buoni: usage: " << printable(e.what()) << " (see buoni --help)\n";
    return exit_usage;
  } catch (const UsageError& e) {
    std::cerr << "buoni: usage: " << printable(e.message) << "\n";
    return exit_usage;
  }
  return exit_code;
}
