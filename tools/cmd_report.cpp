// buoni report (issue 5): not built yet; registers nothing.
#include "tools/commands.h"

namespace buoni::tools {

void register_report(CLI::App& app, Common& common, int& exit_code) {
  (void)app;
  (void)common;
  (void)exit_code;
}

}  // namespace buoni::tools
