// The Beast server of api/server.h: acceptor, sessions, handler pool, drain.
#include "api/server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "api/server_internal.h"

namespace buoni::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using detail::Exchange;
using detail::Front;

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A session as the server's registry sees it (for drain).
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void drain() = 0;  // thread-safe: posts to the session's strand
};

}  // namespace

struct Server::Impl {
  Impl(ApiContext& context, ServerOptions opts)
      : ctx(context),
        options(std::move(opts)),
        front(context, options),
        pool(options.handler_threads, limits::http_handler_queue_max),
        ioc(static_cast<int>(options.io_threads)),
        acceptor(asio::make_strand(ioc)) {}

  // Declared before ioc: pending handlers destroyed with ioc hold sessions,
  // whose streams use the TLS context and whose destructors use the registry.
  ApiContext& ctx;
  ServerOptions options;
  std::optional<ssl::context> tls;
  Front front;
  std::mutex sessions_mutex;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  std::atomic<std::size_t> open_connections{0};
  std::atomic<bool> draining{false};
  // Commands submitted to the engine whose callback has not yet posted the
  // result back to its session: stop() waits for them, so that no callback
  // runs after the server is gone.
  std::atomic<std::size_t> commands_in_flight{0};
  bool stopped = false;
  std::uint16_t bound_port = 0;
  detail::HandlerPool pool;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  std::vector<std::thread> io_threads;

  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void add(const std::shared_ptr<SessionBase>& session);
  void remove(SessionBase* session);
};

namespace {

// One connection. Everything runs on the stream's strand.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(Server::Impl& server, bool reject, std::string remote, Args&&... args)
      : server_(server),
        stream_(std::forward<Args>(args)...),
        read_timer_(beast::get_lowest_layer(stream_).get_executor()),
        remote_(std::move(remote)),
        reject_(reject) {}
  ~Session() override {
    server_.open_connections.fetch_sub(1);
    server_.front.connection_closed();
    server_.remove(this);
  }

  void start() {
    asio::dispatch(executor(), [self = this->shared_from_this()] { self->on_start(); });
  }

  void drain() override {
    asio::post(executor(), [self = this->shared_from_this()] { self->on_drain(); });
  }

 private:
  struct Slot {
    std::optional<Response> response;
    Exchange exchange;  // what the log and metrics need
  };

  auto executor() { return beast::get_lowest_layer(stream_).get_executor(); }
  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }

  void on_start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      tcp().expires_after(std::chrono::milliseconds(server_.options.read_timeout_ms));
      handshaking_ = true;
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                self->handshaking_ = false;
                                if (ec || self->closed_) return self->close_now();
                                self->after_start();
                              });
    } else {
      after_start();
    }
  }

  void after_start() {
    tcp().expires_never();  // the TLS handshake's deadline
    if (reject_) {
      closing_ = true;
      answer_now(server_.front.unavailable("too many connections; retry"), Exchange{});
      return;
    }
    do_read();
  }

  void do_read() {
    if (server_.draining.load()) draining_ = true;  // accepted as stop() began
    if (draining_) return maybe_close();
    if (reading_ || closing_) return;
    if (slots_.size() >= limits::http_pipeline_requests_max) return;
    parser_.emplace();
    parser_->header_limit(limits::http_header_bytes_max);
    parser_->body_limit(limits::http_body_bytes_max);
    reading_ = true;
    // No stream deadline on reads (our read timer is the deadline): a write
    // started while no read was pending set the read's expiry too (Beast's
    // expires_after sets both), and a read started after it would be cut
    // at the write's deadline, keep-alive or not. A write under way keeps
    // its own deadline: only the timer of an operation not pending resets.
    tcp().expires_never();
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
    if (slots_.empty()) arm_read_timer();
  }

  // The deadline of the request being read. It runs only while the server
  // owes the client nothing: a client waiting for answers is not slow. It
  // is our own timer, not the stream's expiry, because at the stream's
  // expiry Beast closes the socket, and a client that sent part of a
  // request is owed a 408 first. The generation makes a stale expiry of an
  // earlier arming harmless.
  void arm_read_timer() {
    std::uint64_t generation = ++read_timer_generation_;
    read_timer_.expires_after(std::chrono::milliseconds(server_.options.read_timeout_ms));
    read_timer_.async_wait([self = this->shared_from_this(), generation](beast::error_code ec) {
      if (ec || generation != self->read_timer_generation_ || !self->reading_) return;
      self->read_timed_out_ = true;
      beast::error_code ignored;
      self->tcp().socket().cancel(ignored);
    });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    ++read_timer_generation_;
    read_timer_.cancel();
    if (closed_) return;  // a read that completed as the connection closed: nobody to answer
    if (read_timed_out_) ec = beast::error::timeout;
    if (ec) return on_read_error(ec);
    Request req = parser_->release();
    Exchange exchange = server_.front.begin(req, remote_);
    if (!req.keep_alive()) closing_ = true;
    std::uint64_t seq = first_seq_ + slots_.size();
    slots_.push_back(Slot{std::nullopt, exchange});
    if (auto early = server_.front.answer_early(req, exchange)) {
      complete(seq, std::move(*early));
    } else {
      dispatch(seq, std::move(req), exchange);
    }
    do_read();
  }

  // Answers at once what needs no engine or was refused; submits a money
  // route's command with no thread waiting for it; other routes (reads,
  // admin commands) run handle_request on the pool.
  void dispatch(std::uint64_t seq, Request req, const Exchange& exchange) {
    Prepared prepared = server_.front.prepare(req, exchange);
    switch (prepared.kind) {
      case Prepared::Kind::answer:
        return complete(seq, std::move(prepared.answer));
      case Prepared::Kind::command:
        return submit(seq, std::move(req), std::move(prepared.step));
      case Prepared::Kind::blocking:
        return run_on_pool(seq, std::move(req), exchange);
    }
  }

  // Engine::submit; the callback (on the commit thread, after the batch is
  // durable) only posts the result back to this strand, where it is rendered
  // (receipt signature included) and written. Refusals (busy: 503 with
  // Retry-After) come back the same way.
  void submit(std::uint64_t seq, Request req, EngineStep step) {
    engine::Request command = std::move(step.request);
    server_.commands_in_flight.fetch_add(1);
    // The callback's executor copies go before its last touch of the
    // server: the callback object itself dies later, on the commit thread,
    // and a Server destroyed meanwhile takes the strand service with it.
    auto done = [self = this->shared_from_this(), strand = std::optional(executor()),
                 work = std::optional(asio::make_work_guard(executor())), seq, req = std::move(req),
                 step = std::move(step)](StatusOr<engine::Result> result) mutable {
      Server::Impl& server = self->server_;
      asio::post(*strand,
                 [self = std::move(self), seq, req = std::move(req), step = std::move(step),
                  result = std::move(result)] { self->on_result(seq, req, step, result); });
      work.reset();  // the posted handler is the io_context's work now
      strand.reset();
      server.commands_in_flight.fetch_sub(1);  // last touch of the server
    };
    server_.ctx.engine.submit(std::move(command), std::move(done));
  }

  void on_result(std::uint64_t seq, const Request& req, const EngineStep& step,
                 const StatusOr<engine::Result>& result) {
    // The slot is still there: answers leave in order, this one was owed.
    const Exchange& exchange = slots_[seq - first_seq_].exchange;
    complete(seq, server_.front.render(req, step, result, exchange));
  }

  // Runs handle_request on the pool; the answer comes back to the strand.
  // A full pool is a 503 for this request only: the connection stays open
  // (answers owed after it on a pipelined connection are still sent).
  void run_on_pool(std::uint64_t seq, Request req, const Exchange& exchange) {
    const bool keep_alive = req.keep_alive();
    auto job = [self = this->shared_from_this(), strand = executor(),
                work = asio::make_work_guard(executor()), seq, req = std::move(req),
                exchange]() mutable {
      Response res = self->server_.front.answer(req, exchange);
      asio::post(strand, [self, seq, res = std::move(res)]() mutable {
        self->complete(seq, std::move(res));
      });
      work.reset();
    };
    if (!server_.pool.post(std::move(job))) {
      Response busy = server_.front.unavailable("the server is busy; retry");
      busy.keep_alive(keep_alive);
      complete(seq, std::move(busy));
    }
  }

  void on_read_error(beast::error_code ec) {
    bool got_some = (parser_ && parser_->got_some()) || buffer_.size() > 0;
    closing_ = true;
    if (ec == beast::error::timeout) {
      if (!got_some || !slots_.empty() || writing_) return close_now();
      return answer_now(
          server_.front.refusal(408, "request_timeout", "the request did not arrive in time"),
          Exchange{});
    }
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::eof) {
      return maybe_close();
    }
    if (ec == http::error::body_limit) {
      return answer_now(server_.front.refusal(413, "body_too_large", "the body is over 64 KiB"),
                        Exchange{});
    }
    if (ec == http::error::header_limit) {
      return answer_now(
          server_.front.refusal(431, "headers_too_large", "the request headers are over 8 KiB"),
          Exchange{});
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      return answer_now(server_.front.refusal(400, "bad_request", "malformed HTTP request"),
                        Exchange{});
    }
    close_now();  // reset, TLS error: nobody to answer
  }

  // An answer of the server itself, after the requests already read.
  void answer_now(Response res, const Exchange& exchange) {
    res.keep_alive(false);
    std::uint64_t seq = first_seq_ + slots_.size();
    slots_.push_back(Slot{std::nullopt, exchange});
    complete(seq, std::move(res));
  }

  void complete(std::uint64_t seq, Response res) {
    if (closed_) return;
    BUONI_ASSERT(seq >= first_seq_ && seq < first_seq_ + slots_.size());
    res.prepare_payload();
    Slot& slot = slots_[seq - first_seq_];
    if (slot.exchange.method == "HEAD") {  // the headers of the answer, no content
      auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    slot.response = std::move(res);
    do_write();
  }

  void do_write() {
    if (writing_ || closed_ || slots_.empty() || !slots_.front().response) return;
    writing_ = true;
    Response& res = *slots_.front().response;
    server_.front.answered(slots_.front().exchange, res);
    // The last answer before closing says so.
    if ((closing_ || draining_) && slots_.size() == 1 && !reading_) res.keep_alive(false);
    tcp().expires_after(std::chrono::milliseconds(server_.options.write_timeout_ms));
    http::async_write(stream_, res,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t bytes) {
                        self->on_write(ec, bytes);
                      });
  }

  void on_write(beast::error_code ec, std::size_t bytes) {
    writing_ = false;
    Slot& slot = slots_.front();
    bool keep_alive = slot.response->keep_alive();
    server_.front.finish(slot.exchange, *slot.response, bytes, ec);
    slots_.pop_front();
    ++first_seq_;
    if (ec) return close_now();
    if (!keep_alive) return shutdown();
    do_write();
    if (reading_) {
      if (slots_.empty()) arm_read_timer();  // owed nothing now: the client's turn
      return;
    }
    if (closing_ || draining_) return maybe_close();
    do_read();
  }

  void on_drain() {
    draining_ = true;
    // Mid-handshake nothing was asked yet: end the handshake (a TLS
    // shutdown must not overlap it); its handler closes the connection.
    if (handshaking_) return tcp().cancel();
    bool idle = !(parser_ && parser_->got_some()) && buffer_.size() == 0;
    if (reading_ && idle) tcp().cancel();  // an idle keep-alive connection: close it
    maybe_close();
  }

  // Closes once every answer already owed is written.
  void maybe_close() {
    if (slots_.empty() && !writing_ && !reading_) shutdown();
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    read_timer_.cancel();
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      tcp().expires_after(std::chrono::milliseconds(1000));
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->tcp().close(); });
    } else {
      beast::error_code ignored;
      tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
      tcp().close();
    }
  }

  void close_now() {
    closed_ = true;
    read_timer_.cancel();
    tcp().close();
  }

  Server::Impl& server_;
  Stream stream_;
  asio::steady_timer read_timer_;
  std::uint64_t read_timer_generation_ = 0;
  bool read_timed_out_ = false;
  std::string remote_;
  bool reject_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<Slot> slots_;  // answers owed, in request order
  std::uint64_t first_seq_ = 0;
  bool reading_ = false, writing_ = false, closing_ = false, draining_ = false, closed_ = false;
  bool handshaking_ = false;  // TLS: the handshake is under way
};

std::string remote_address(const tcp::socket& socket) {
  beast::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  return ec ? std::string("unknown") : endpoint.address().to_string();
}

}  // namespace

void Server::Impl::do_accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (!ec) {
    bool reject = open_connections.fetch_add(1) >= options.connections_max;
    front.connection_opened();
    std::string remote = remote_address(socket);
    std::shared_ptr<SessionBase> session;
    if (tls) {
      auto s = std::make_shared<Session<TlsStream>>(*this, reject, remote, std::move(socket), *tls);
      add(s);
      s->start();
    } else {
      auto s = std::make_shared<Session<PlainStream>>(*this, reject, remote, std::move(socket));
      add(s);
      s->start();
    }
  }
  do_accept();  // errors such as EMFILE: keep accepting
}

void Server::Impl::add(const std::shared_ptr<SessionBase>& session) {
  std::lock_guard lock(sessions_mutex);
  sessions.emplace(session.get(), session);
}

void Server::Impl::remove(SessionBase* session) {
  std::lock_guard lock(sessions_mutex);
  sessions.erase(session);
}

}  // namespace buoni::api

namespace buoni::api {

namespace {

Status setup_tls(ssl::context& tls, const TlsFiles& files) {
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use);
  beast::error_code ec;
  tls.use_certificate_chain_file(files.cert_file, ec);
  if (ec) return invalid_argument("TLS certificate " + files.cert_file + ": " + ec.message());
  tls.use_private_key_file(files.key_file, ssl::context::pem, ec);
  if (ec) return invalid_argument("TLS key " + files.key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(tls.native_handle()) != 1) {
    return invalid_argument("TLS key " + files.key_file + " does not match the certificate");
  }
  return Status();
}

Status bind(tcp::acceptor& acceptor, const ServerOptions& options) {
  beast::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return invalid_argument("not an IP address to listen on: " + options.host);
  tcp::endpoint endpoint{address, options.port};
  std::string where = options.host + ":" + std::to_string(options.port);
  if (acceptor.open(endpoint.protocol(), ec)) return unavailable(where + ": " + ec.message());
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec)) {
    return unavailable(where + ": " + ec.message());
  }
  if (acceptor.bind(endpoint, ec))
    return unavailable("cannot listen on " + where + ": " + ec.message());
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) {
    return unavailable("cannot listen on " + where + ": " + ec.message());
  }
  return Status();
}

Status check_options(const ServerOptions& o) {
  if (o.io_threads < 1 || o.io_threads > 64) return invalid_argument("io threads: 1 to 64");
  if (o.handler_threads < 1 || o.handler_threads > limits::http_handler_threads_max) {
    return invalid_argument("handler threads: 1 to " +
                            std::to_string(limits::http_handler_threads_max));
  }
  if (o.read_timeout_ms < 1 || o.write_timeout_ms < 1 || o.drain_timeout_ms < 0) {
    return invalid_argument("timeouts must be positive");
  }
  if (o.connections_max < 1 || o.connections_max > limits::http_connections_max) {
    return invalid_argument("connections: 1 to " + std::to_string(limits::http_connections_max));
  }
  return Status();
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  stop();
}

StatusOr<std::unique_ptr<Server>> Server::start(ApiContext& ctx, ServerOptions options) {
  BUONI_RETURN_IF_ERROR(check_options(options));
  auto impl = std::make_unique<Impl>(ctx, std::move(options));
  if (impl->options.tls) {
    impl->tls.emplace(ssl::context::tls_server);
    BUONI_RETURN_IF_ERROR(setup_tls(*impl->tls, *impl->options.tls));
  }
  BUONI_RETURN_IF_ERROR(bind(impl->acceptor, impl->options));
  impl->bound_port = impl->acceptor.local_endpoint().port();
  impl->do_accept();
  for (std::size_t i = 0; i < impl->options.io_threads; ++i) {
    impl->io_threads.emplace_back([io = &impl->ioc] { io->run(); });
  }
  impl->front.log_event(
      "listening", {{"url", std::string(impl->tls ? "https" : "http") + "://" + impl->options.host +
                                ":" + std::to_string(impl->bound_port)}});
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

std::uint16_t Server::port() const {
  return impl_->bound_port;
}

std::string Server::url() const {
  std::string host = impl_->options.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(impl_->tls ? "https" : "http") + "://" + host + ":" + std::to_string(port());
}

void Server::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  s.draining = true;
  asio::post(s.acceptor.get_executor(), [&s] {
    beast::error_code ignored;
    s.acceptor.close(ignored);
  });
  // Collected under the lock, drained and released after it: the last
  // reference may be ours, and ~Session takes the lock to unregister.
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(s.sessions_mutex);
    for (auto& [ptr, weak] : s.sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) session->drain();
  live.clear();
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(s.options.drain_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline &&
         (s.open_connections.load() > 0 || !s.pool.idle() || s.commands_in_flight.load() > 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  s.ioc.stop();
  for (auto& t : s.io_threads) t.join();
  s.pool.stop();
  // The engine calls back every command it was given (it is still running:
  // the caller stops it after the server), as pool.stop() waits for its jobs.
  while (s.commands_in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.front.log_event("stopped", {});
}

}  // namespace buoni::api
