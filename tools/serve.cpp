#include "tools/serve.h"

#include <csignal>
#include <iostream>

#include "tools/cli.h"

namespace buoni::tools {

namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void block_stop_signals() {
  sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Status serve_until_signal(Node& node, api::ServerOptions options,
                          const std::function<void(const std::string&)>& on_listening) {
  BUONI_ASSIGN_OR_RETURN(Hash32 admin_key_hash, api::read_admin_key_hash(node.store()));
  api::ApiContext ctx{node.engine(),     node.store(),   node.signing_key(), node.verify_keys(),
                      node.pin_pepper(), admin_key_hash, node.clock()};
  ctx.secure_cookies = options.tls.has_value();
  options.log = &std::cerr;
  BUONI_ASSIGN_OR_RETURN(auto server, api::Server::start(ctx, std::move(options)));
  on_listening(server->url());
  sigset_t set = stop_signals();
  int signal = 0;
  sigwait(&set, &signal);
  server->stop();
  node.engine().stop();
  return Status();
}

void parse_listen(std::string_view text, api::ServerOptions& options) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw UsageError{"--listen wants HOST:PORT"};
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  options.host = host.empty() ? "0.0.0.0" : std::string(host);
  options.port =
      port == "0" ? 0 : static_cast<std::uint16_t>(parse_count("--listen port", port, 65535));
}

}  // namespace buoni::tools
