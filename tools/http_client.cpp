#include "tools/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cstdlib>
#include <optional>

namespace buoni::tools {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t answer_body_max = 64u << 20;

std::string lower(std::string_view text) {
  std::string s(text);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "Connection refused" -> "connection refused".
std::string why(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  std::string m = ec.message();
  if (!m.empty() && std::isupper(static_cast<unsigned char>(m[0])) &&
      (m.size() < 2 || !std::isupper(static_cast<unsigned char>(m[1])))) {
    m[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(m[0])));
  }
  return m;
}

bool valid_port(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  int v = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  return v >= 1 && v <= 65535;
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// A connection's failure to send or to read the answer.
struct Failure {
  beast::error_code ec;
  bool reading = false;
  bool got_some = false;  // part of an answer arrived
};

}  // namespace

StatusOr<ServerUrl> parse_server_url(std::string_view url) {
  auto bad = [&](const std::string& what) {
    return invalid_argument("--server '" + std::string(url) + "': " + what +
                            " (expected http://HOST[:PORT] or https://HOST[:PORT])");
  };
  ServerUrl u;
  u.text = std::string(url);
  std::string head = lower(url.substr(0, 8));
  std::string_view rest;
  if (head.starts_with("http://")) {
    rest = url.substr(7);
    u.port = "80";
  } else if (head.starts_with("https://")) {
    rest = url.substr(8);
    u.tls = true;
    u.port = "443";
  } else {
    return bad("the scheme must be http:// or https://");
  }
  if (rest.find_first_of("?#@ ") != std::string_view::npos) return bad("unexpected character");
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.size() < rest.size()) {
    std::string_view path = rest.substr(authority.size());
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    u.prefix = std::string(path);
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed [");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return bad("junk after ]");
    if (!after.empty()) port = after.substr(1);
    if (after == ":") return bad("empty port");
  } else {
    auto colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
  }
  if (u.host.empty()) return bad("no host");
  if (!port.empty()) {
    if (!valid_port(port)) return bad("the port must be 1 to 65535");
    u.port = std::string(port);
  }
  return u;
}

std::string HttpAnswer::header(std::string_view name) const {
  std::string want = lower(name);
  for (const auto& h : headers) {
    if (lower(h.name) == want) return h.value;
  }
  return "";
}

struct HttpClient::Impl {
  ServerUrl url;
  HttpTimeouts timeouts;
  asio::io_context ioc;
  std::optional<ssl::context> tls;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool connected = false;

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // Starts one asynchronous operation with a handler storing its error, runs
  // it to completion (timeouts are the tcp_stream's), returns the error.
  template <typename Start>
  beast::error_code run(Start start) {
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  // Calls fn with the stream requests go through (plain or TLS).
  template <typename Fn>
  auto with_stream(Fn fn) {
    return secure ? fn(*secure) : fn(*plain);
  }

  void disconnect() {
    if (plain || secure) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().close();
    }
    secure.reset();
    plain.reset();
    buffer.clear();
    connected = false;
  }

  [[nodiscard]] Status make_tls_context();
  [[nodiscard]] Status connect();
  [[nodiscard]] Status handshake();
  [[nodiscard]] std::optional<Failure> exchange(const http::request<http::string_body>& req,
                                                HttpAnswer& answer);
};

Status HttpClient::Impl::make_tls_context() {
  tls.emplace(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  tls->set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  const char* ca_file = std::getenv("BUONI_CA_FILE");
  if (ca_file && *ca_file) {
    tls->load_verify_file(ca_file, ec);
    if (ec) {
      return invalid_argument("BUONI_CA_FILE: cannot load " + std::string(ca_file) + ": " +
                              why(ec));
    }
  } else {
    tls->set_default_verify_paths(ec);
    if (ec) return unavailable("cannot load the system's trusted certificates: " + why(ec));
  }
  return Status();
}

Status HttpClient::Impl::handshake() {
  SSL* ssl_handle = secure->native_handle();
  if (!is_ip_literal(url.host)) {
    // SNI, and the name the certificate must carry.
    if (SSL_set_tlsext_host_name(ssl_handle, url.host.c_str()) != 1 ||
        SSL_set1_host(ssl_handle, url.host.c_str()) != 1) {
      return internal_error("cannot set the TLS host name " + url.host);
    }
  } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), url.host.c_str()) != 1) {
    return internal_error("cannot set the TLS host address " + url.host);
  }
  lowest().expires_after(timeouts.connect);
  beast::error_code ec =
      run([&](auto handler) { secure->async_handshake(ssl::stream_base::client, handler); });
  if (ec) return unavailable("TLS handshake with " + url.text + " failed: " + why(ec));
  return Status();
}

Status HttpClient::Impl::connect() {
  disconnect();
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(url.host, url.port, ec);
  if (ec) return unavailable("cannot reach " + url.text + ": " + why(ec));
  if (url.tls) {
    secure.emplace(ioc, *tls);
  } else {
    plain.emplace(ioc);
  }
  lowest().expires_after(timeouts.connect);
  ec = run([&](auto handler) { lowest().async_connect(endpoints, handler); });
  if (ec) {
    disconnect();
    return unavailable("cannot reach " + url.text + ": " + why(ec));
  }
  if (secure) {
    Status s = handshake();
    if (!s.ok()) {
      disconnect();
      return s;
    }
  }
  lowest().expires_never();
  connected = true;
  return Status();
}

std::optional<Failure> HttpClient::Impl::exchange(const http::request<http::string_body>& req,
                                                  HttpAnswer& answer) {
  lowest().expires_after(timeouts.request);
  beast::error_code ec = with_stream(
      [&](auto& stream) { return run([&](auto h) { http::async_write(stream, req, h); }); });
  if (ec) return Failure{ec, false, false};
  http::response_parser<http::string_body> parser;
  parser.body_limit(answer_body_max);
  ec = with_stream([&](auto& stream) {
    return run([&](auto h) { http::async_read(stream, buffer, parser, h); });
  });
  if (ec) return Failure{ec, true, parser.got_some()};
  lowest().expires_never();
  const auto& res = parser.get();
  answer.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    answer.headers.push_back({std::string(field.name_string()), std::string(field.value())});
  }
  answer.body = res.body();
  if (!res.keep_alive()) disconnect();
  return std::nullopt;
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() {
  try {
    impl_->disconnect();
  } catch (...) {  // a destructor reports nothing
  }
}

const ServerUrl& HttpClient::url() const {
  return impl_->url;
}

StatusOr<std::unique_ptr<HttpClient>> HttpClient::create(const ServerUrl& url,
                                                         HttpTimeouts timeouts) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->url = url;
    impl->timeouts = timeouts;
    if (url.tls) BUONI_RETURN_IF_ERROR(impl->make_tls_context());
    return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
  } catch (const std::exception& e) {
    return internal_error(std::string("HTTP client: ") + e.what());
  }
}

StatusOr<HttpAnswer> HttpClient::send(std::string_view method, std::string_view target,
                                      const std::vector<HttpHeader>& headers,
                                      std::string_view body) {
  Impl& d = *impl_;
  try {
    http::verb verb = http::string_to_verb(method);
    if (verb == http::verb::unknown) return invalid_argument("unknown HTTP method");
    http::request<http::string_body> req{verb, d.url.prefix + std::string(target), 11};
    bool bracket = d.url.host.find(':') != std::string::npos;
    std::string host = bracket ? "[" + d.url.host + "]" : d.url.host;
    bool default_port = d.url.port == (d.url.tls ? "443" : "80");
    req.set(http::field::host, default_port ? host : host + ":" + d.url.port);
    req.set(http::field::user_agent, "buoni");
    req.set(http::field::accept, "application/json");
    for (const auto& h : headers) req.set(h.name, h.value);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = std::string(body);
    req.keep_alive(true);
    req.prepare_payload();
    for (int attempt = 0;; ++attempt) {
      bool reused = d.connected;
      if (!d.connected) BUONI_RETURN_IF_ERROR(d.connect());
      HttpAnswer answer;
      std::optional<Failure> failed = d.exchange(req, answer);
      if (!failed) return answer;
      d.disconnect();
      // A kept-alive connection the server had already closed: once more, anew.
      bool stale = reused && !failed->got_some && failed->ec != beast::error::timeout;
      if (stale && attempt == 0) continue;
      if (failed->ec == beast::error::timeout) {
        return unavailable("no answer from " + d.url.text + " in time (timed out)");
      }
      return unavailable(std::string(failed->reading ? "reading the answer of " : "sending to ") +
                         d.url.text + " failed: " + why(failed->ec));
    }
  } catch (const std::exception& e) {
    d.disconnect();
    return internal_error("HTTP request to " + d.url.text + " failed: " + e.what());
  }
}

}  // namespace buoni::tools
