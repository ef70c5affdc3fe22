// Server: the HTTP(S) front of handle_request (api/handler.h), in the style
// of Boost.Beast's example servers.
//
//  - One acceptor; one Session object per connection on its own strand.
//  - Every read has explicit limits: request headers at most
//    limits::http_header_bytes_max (431 headers_too_large), bodies at most
//    limits::http_body_bytes_max (413 body_too_large), and the whole request
//    must arrive within read_timeout_ms of the session starting to wait for
//    it (a client that never finishes: 408 request_timeout if it had sent
//    anything, silent close when it was an idle keep-alive connection).
//    A malformed request is 400 bad_request. After any of these the
//    connection is closed; the server keeps serving the others.
//  - Keep-alive as the request asks; pipelined requests are handled
//    concurrently and answered in order, at most
//    limits::http_pipeline_requests_max read ahead.
//  - The shop's money routes never park a thread: the session (on its
//    strand) runs prepare_request, Engine::submit()s the command, and the
//    writer's callback posts the durable result back to the strand, where
//    finish_request renders it (503 + Retry-After when the writer's queue
//    is full). Other routes (reads, admin commands, settlements) run
//    handle_request on a pool of handler threads, never on the I/O threads;
//    the pool's queue is bounded (503 unavailable + Retry-After when full,
//    for that request; the connection stays open).
//  - Every answer must be taken by the client within write_timeout_ms, or
//    the connection is closed (the stream's expiry; reads never carry it).
//  - At most connections_max connections: past it, 503 and close.
//  - Public routes (/v1/public/..., /c/...) are rate-limited per client
//    address, and so are failed card look-ups (404 unknown_card, 400
//    invalid_card): 429 rate_limited with Retry-After.
//  - GET /metrics answers the Prometheus text format (api/metrics.h).
//  - One JSON log line per request (api/access_log.h): card tokens and
//    numbers masked, never a header value or a body.
//  - TLS (TLS 1.2 and up, OpenSSL via asio::ssl) when tls is set; then every
//    connection is TLS.
//
// Lifecycle: start() binds (port 0 picks a free port: see port()) and starts
// the threads. stop() stops accepting, lets every session finish the
// requests it has read or is reading (the last answer says Connection:
// close), closes idle connections, waits for that up to drain_timeout_ms,
// then joins all threads. The caller then stops the engine (which finishes
// the writer's batch) and closes the store. A request still incomplete at
// the drain deadline is dropped unanswered: nothing of it was applied. A
// command already with the engine whose answer is not written by then (a
// disk that stalls for the whole drain) may be applied without its answer
// being sent: the client's retry with the same Idempotency-Key gets it
// (replayed) from the next server. stop()
// also waits until the engine has called back every command submitted (as
// it waits for the pool's jobs); a callback may still be destroyed after
// stop() returns, but by then it holds nothing of the server.
//
// Ownership: the Server borrows the ApiContext, which must outlive it.
// Thread safety: start/stop/port/url from one controlling thread.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include "api/handler.h"
#include "crypto/status.h"
#include "engine/limits.h"

namespace buoni::api {

struct TlsFiles {
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // PEM private key
};

struct ServerOptions {
  std::string host = "127.0.0.1";  // an IPv4 or IPv6 address to bind
  std::uint16_t port = 8080;       // 0: any free port
  std::size_t io_threads = 2;
  std::size_t handler_threads = 64;  // at most limits::http_handler_threads_max
  std::optional<TlsFiles> tls;
  std::int64_t read_timeout_ms = 30'000;   // one whole request, headers and body
  std::int64_t write_timeout_ms = 30'000;  // one whole answer
  std::int64_t drain_timeout_ms = 10'000;  // stop(): in-flight requests get this long
  std::size_t connections_max = limits::http_connections_max;
  // Token buckets per client address: public routes, and failed card look-ups.
  double public_rate_per_s = limits::public_rate_per_s;
  double public_burst = limits::public_burst;
  double failed_lookup_rate_per_s = limits::failed_lookup_rate_per_s;
  double failed_lookup_burst = limits::failed_lookup_burst;
  double sign_in_rate_per_s = limits::sign_in_rate_per_s;  // POST /v1/sessions
  double sign_in_burst = limits::sign_in_burst;
  std::ostream* log = nullptr;  // JSON lines; nullptr: no log
};

class Server {
 public:
  // Binds and starts serving. invalid_argument: a bad host or option;
  // unavailable: the address is in use or not bindable; a TLS file that
  // cannot be read or does not match: invalid_argument naming it.
  [[nodiscard]] static StatusOr<std::unique_ptr<Server>> start(ApiContext& ctx,
                                                               ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  // "http://127.0.0.1:PORT" (https when TLS; IPv6 hosts in brackets).
  [[nodiscard]] std::string url() const;
  // Idempotent; returns when every connection is closed and every thread joined.
  void stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace buoni::api
