// buoni: the command-line tool. See README.md for every command.
#include <iostream>

#include "tools/commands.h"

// fontconfig (under cairo's text, when cards are rendered) keeps its caches
// for the life of the process; LeakSanitizer (BUONI_SANITIZE builds) would
// report them at exit. Nothing calls this in other builds.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }

namespace {
// CLI11 reports an unknown command as "A subcommand is required"; name it.
const char* unknown_command(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--data") {
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
}  // namespace

int main(int argc, char** argv) {
  using namespace buoni::tools;
  CLI::App app{"buoni: food-aid voucher cards (buoni spesa) with a verifiable ledger", "buoni"};
  app.require_subcommand(1);
  app.fallthrough();
  Common common;
  app.add_option("--data", common.data, "data directory")->capture_default_str();
  app.add_flag("--json", common.json, "print the JSON object the HTTP API returns");
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
  if (const char* name = unknown_command(app, argc, argv)) {
    std::cerr << "buoni: usage: unknown command '" << name << "' (see buoni --help)\n";
    return exit_usage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help: CLI11 prints the right command's help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "buoni: usage: " << e.what() << " (see buoni --help)\n";
    return exit_usage;
  } catch (const UsageError& e) {
    std::cerr << "buoni: usage: " << e.message << "\n";
    return exit_usage;
  }
  return exit_code;
}
