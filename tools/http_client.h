// A small synchronous HTTP/1.1 client for the `buoni` command's --server
// mode, on Boost.Beast.
//
// Contract:
//  - One HttpClient holds at most one connection to one server (http:// or
//    https://) and reuses it for every request (keep-alive). When a reused
//    connection turns out to be closed by the server (idle timeout) before
//    any answer was read, it reconnects once and sends the request again.
//  - https: TLS 1.2 or newer (OpenSSL through asio::ssl); the server's
//    certificate is verified against the system's trust store, or against
//    the CA file named by $BUONI_CA_FILE when set; SNI is sent and the
//    certificate must name the URL's host (DNS name or IP address).
//  - Timeouts: connecting (TCP + TLS handshake) and each request (write and
//    read of the whole answer) are bounded; a timeout is an error.
//  - Errors are Status, never exceptions: a malformed URL is
//    invalid_argument; a network or TLS failure is unavailable with a message
//    that names the URL ("cannot reach http://127.0.0.1:1: connection
//    refused"); the connection is dropped after any failure.
//  - Thread safety: one HttpClient per thread. Several clients (one each)
//    may run in parallel.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"

namespace buoni::tools {

struct ServerUrl {
  bool tls = false;
  std::string host;    // "127.0.0.1", "example.org", "::1" (no brackets)
  std::string port;    // "8080"; the scheme's default when the URL has none
  std::string prefix;  // path before the API's own ("" or "/buoni"), no trailing '/'
  std::string text;    // the URL as given, for messages
};
// "http://host[:port][/prefix]" or "https://..."; IPv6 hosts in brackets.
[[nodiscard]] StatusOr<ServerUrl> parse_server_url(std::string_view url);

struct HttpHeader {
  std::string name, value;
};

struct HttpAnswer {
  int status = 0;
  std::vector<HttpHeader> headers;
  std::string body;
  // The value of header `name` (case-insensitive); "" when absent.
  [[nodiscard]] std::string header(std::string_view name) const;
};

struct HttpTimeouts {
  std::chrono::milliseconds connect{10'000};
  std::chrono::milliseconds request{60'000};
};

class HttpClient {
 public:
  [[nodiscard]] static StatusOr<std::unique_ptr<HttpClient>> create(const ServerUrl& url,
                                                                    HttpTimeouts timeouts = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `method` (GET, POST, ...) for `target` ("/v1/cards", prefixed by
  // the URL's path) with `headers` and `body` (Content-Type:
  // application/json when not empty) and reads the whole answer.
  [[nodiscard]] StatusOr<HttpAnswer> send(std::string_view method, std::string_view target,
                                          const std::vector<HttpHeader>& headers,
                                          std::string_view body);
  [[nodiscard]] const ServerUrl& url() const;

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace buoni::tools
