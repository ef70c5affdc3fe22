// buoni serve: the HTTP API (api/server.h) over a data directory, until
// SIGTERM or SIGINT. The first line on stdout is "listening on URL".
#include <iostream>

#include "tools/commands.h"
#include "tools/serve.h"

namespace buoni::tools {

namespace {

struct ServeArgs {
  std::string listen = "127.0.0.1:8080", threads = "2", handler_threads = "64";
  std::string tls_cert, tls_key, read_timeout_ms = "30000", write_timeout_ms = "30000";
};

api::ServerOptions serve_options(const ServeArgs& args) {
  api::ServerOptions options;
  parse_listen(args.listen, options);
  options.io_threads = static_cast<std::size_t>(parse_count("--threads", args.threads, 64));
  options.handler_threads = static_cast<std::size_t>(
      parse_count("--handler-threads", args.handler_threads, limits::http_handler_threads_max));
  options.read_timeout_ms =
      parse_count("--read-timeout-ms", args.read_timeout_ms, limits::http_timeout_ms_max);
  options.write_timeout_ms =
      parse_count("--write-timeout-ms", args.write_timeout_ms, limits::http_timeout_ms_max);
  if (options.io_threads < 1 || options.handler_threads < 1 || options.read_timeout_ms < 1 ||
      options.write_timeout_ms < 1) {
    throw UsageError{
        "--threads, --handler-threads, --read-timeout-ms and --write-timeout-ms must be positive"};
  }
  if (args.tls_cert.empty() != args.tls_key.empty()) {
    throw UsageError{"--tls-cert and --tls-key go together"};
  }
  if (!args.tls_cert.empty()) options.tls = api::TlsFiles{args.tls_cert, args.tls_key};
  return options;
}

}  // namespace

void register_serve(CLI::App& app, Common& common, int& exit_code) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "serve the HTTP API until SIGTERM or Ctrl-C");
  cmd->add_option("--listen", args->listen, "HOST:PORT to listen on; port 0 picks a free one")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "I/O threads")->capture_default_str();
  cmd->add_option("--handler-threads", args->handler_threads,
                  "threads running requests (each waits for its batch's fsync)")
      ->capture_default_str();
  cmd->add_option("--tls-cert", args->tls_cert, "PEM certificate chain: serve HTTPS");
  cmd->add_option("--tls-key", args->tls_key, "PEM private key of --tls-cert");
  cmd->add_option("--read-timeout-ms", args->read_timeout_ms, "time a client has to send a request")
      ->capture_default_str();
  cmd->add_option("--write-timeout-ms", args->write_timeout_ms,
                  "time a client has to take an answer")
      ->capture_default_str();
  cmd->callback([args, &common, &exit_code] {
    api::ServerOptions options = serve_options(*args);
    block_stop_signals();
    auto node = Node::open(common.dir());
    if (!node.ok()) {
      exit_code = report_status(common, node.status());
      return;
    }
    Status served = serve_until_signal(**node, std::move(options), [](const std::string& url) {
      std::cout << "listening on " << url << std::endl;
    });
    exit_code = served.ok() ? exit_ok : report_status(common, served);
  });
}

}  // namespace buoni::tools
