// The `buoni` subcommands. Each register_* adds its commands to the CLI11
// app; their callbacks store the process exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/cli.h"

namespace buoni::tools {

void register_init(CLI::App& app, Common& common, int& exit_code);
void register_programme(CLI::App& app, Common& common, int& exit_code);
void register_merchant(CLI::App& app, Common& common, int& exit_code);
void register_card(CLI::App& app, Common& common, int& exit_code);
void register_card_print(CLI::App& card, Common& common, int& exit_code);  // render, verify
void register_redeem(CLI::App& app, Common& common, int& exit_code);
void register_audit(CLI::App& app, Common& common, int& exit_code);
void register_demo(CLI::App& app, Common& common, int& exit_code);
void register_key(CLI::App& app, Common& common, int& exit_code);
void register_issue(CLI::App& app, Common& common, int& exit_code);
void register_serve(CLI::App& app, Common& common, int& exit_code);
void register_reconcile(CLI::App& app, Common& common, int& exit_code);
void register_settle(CLI::App& app, Common& common, int& exit_code);
void register_export(CLI::App& app, Common& common, int& exit_code);  // export, verify-export
void register_report(CLI::App& app, Common& common, int& exit_code);
void register_backup(CLI::App& app, Common& common, int& exit_code);  // backup, restore

}  // namespace buoni::tools
