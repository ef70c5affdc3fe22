// Serving the HTTP API from a data directory, until SIGTERM or SIGINT:
// shared by `buoni serve` and `buoni demo`.
#pragma once

#include <functional>
#include <string>

#include "api/server.h"
#include "tools/data_dir.h"

namespace buoni::tools {

// Blocks SIGTERM and SIGINT in the calling thread, so every thread started
// after it (the engine's writer, the server's) inherits the mask and the
// signal is taken only by wait_for_stop_signal(). Call before Node::open.
void block_stop_signals();

// Starts the server over `node`, calls `on_listening(url)`, waits for SIGTERM
// or SIGINT, then stops the server (draining in-flight requests) and the
// engine (finishing the writer's batch). A Status when it could not start.
[[nodiscard]] Status serve_until_signal(
    Node& node, api::ServerOptions options,
    const std::function<void(const std::string&)>& on_listening);

// "127.0.0.1:8080", "[::1]:0", ":8080" (all IPv4 addresses) into options.
// Usage error on a malformed value.
void parse_listen(std::string_view text, api::ServerOptions& options);

}  // namespace buoni::tools
