#include "tests/server_support.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>

#include "tests/support.h"

extern char** environ;

namespace buoni::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

ServeProcess::ServeProcess(const std::string& program, const std::vector<std::string>& args,
                           const std::string& stderr_path)
    : stderr_path_(stderr_path) {
  int out[2];
  REQUIRE(pipe2(out, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> all{program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  int spawned = posix_spawn(&pid_, program.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  REQUIRE(spawned == 0);
  out_fd_ = out[0];
  drain_ = std::thread([this] {
    char buf[4096];
    for (;;) {
      ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) return;
      std::lock_guard lock(mutex_);
      out_.append(buf, static_cast<std::size_t>(n));
    }
  });
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0) static_cast<void>(stop(SIGKILL));
  if (drain_.joinable()) drain_.join();
  if (out_fd_ >= 0) close(out_fd_);
}

std::string ServeProcess::out() const {
  std::lock_guard lock(mutex_);
  return out_;
}

std::string ServeProcess::wait_for_line(const std::string& prefix,
                                        std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = out();
    std::size_t at = 0;
    while (at < text.size()) {
      std::size_t end = text.find('\n', at);
      if (end == std::string::npos) break;
      std::string line = text.substr(at, end - at);
      if (line.starts_with(prefix)) return line.substr(prefix.size());
      at = end + 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL("no line starting '" << prefix << "' within the timeout; stdout was:\n" << out());
  return {};
}

int ServeProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    report_early_exit(status);
  } else {
    kill(pid_, signal);
    wait_or_kill(status, timeout);
  }
  pid_ = -1;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (drain_.joinable()) drain_.join();
  return exit_code_;
}

void ServeProcess::wait_or_kill(int& status, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pid_t done = 0;
  for (;;) {
    done = waitpid(pid_, &status, WNOHANG);
    if (done < 0 && errno == EINTR) continue;
    if (done != 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (done == 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
}

void ServeProcess::report_early_exit(int status) const {
  constexpr std::size_t tail_max = 16 * 1024;  // enough for a sanitizer's report
  std::string tail = read_file(stderr_path_);
  if (tail.size() > tail_max) tail.erase(0, tail.size() - tail_max);
  std::fprintf(stderr,
               "[server_support] pid %d ended by itself before it was stopped (%s %d); "
               "the end of its stderr (%s):\n%s\n[server_support] end of pid %d's stderr\n",
               static_cast<int>(pid_), WIFEXITED(status) ? "exit code" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), stderr_path_.c_str(),
               tail.c_str(), static_cast<int>(pid_));
}

ServedDir::ServedDir(const std::string& buoni, const std::string& dir,
                     const std::vector<std::string>& extra) {
  std::vector<std::string> args{"--data", dir, "serve", "--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  process = std::make_unique<ServeProcess>(buoni, args, dir + "-serve.log");
  url = process->wait_for_url();
  auto colon = url.rfind(':');
  REQUIRE(colon != std::string::npos);
  port = static_cast<std::uint16_t>(std::stoi(url.substr(colon + 1)));
}

std::string Reply::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpClient::Impl {
  std::uint16_t port;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  bool connect() {
    stream.emplace(ioc);
    beast::error_code ec;
    stream->socket().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    buffer.clear();
    if (ec) stream.reset();
    return !ec;
  }

  std::optional<Reply> once(const http::request<http::string_body>& req) {
    if (!stream && !connect()) return std::nullopt;
    beast::error_code ec;
    stream->expires_after(std::chrono::seconds(60));
    http::write(*stream, req, ec);
    if (ec) return drop();
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(*stream, buffer, parser, ec);
    if (ec) return drop();
    auto res = parser.release();
    Reply reply;
    reply.status = res.result_int();
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = std::string(field.value());
    }
    reply.body = std::move(res.body());
    if (!res.keep_alive()) stream.reset();
    return reply;
  }

  std::optional<Reply> drop() {
    stream.reset();
    return std::nullopt;
  }
};

HttpClient::HttpClient(std::uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
}

HttpClient::~HttpClient() = default;

Reply HttpClient::call(const std::string& method, const std::string& target,
                       const std::string& body, const std::string& key,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  if (req.method() == http::verb::unknown) req.method_string(method);
  req.set(http::field::host, "127.0.0.1");
  if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
  for (const auto& [name, value] : headers) req.insert(name, value);
  req.body() = body;
  if (!body.empty() || method == "POST") req.prepare_payload();
  // A connection the server closed in between is retried once on a new one.
  bool reused = impl_->stream.has_value();
  auto reply = impl_->once(req);
  if (!reply && reused) reply = impl_->once(req);
  return reply ? *reply : Reply{};
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before reading it all
    sent += static_cast<std::size_t>(n);
  }
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return got;
}

}  // namespace buoni::test
