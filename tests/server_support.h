// Helpers for tests against a real `buoni serve` (or `buoni demo`) process on
// 127.0.0.1: the process, and a small HTTP/1.1 client on Boost.Beast with
// keep-alive, plus raw-bytes access for malformed requests. Part of
// buoni_test_support; call inside a test case (failures REQUIRE).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace buoni::test {

// A running `program args...` whose stdout is drained into out() by a thread
// and whose stderr goes to `stderr_path`. stop() sends SIGTERM and waits.
class ServeProcess {
 public:
  ServeProcess(const std::string& program, const std::vector<std::string>& args,
               const std::string& stderr_path);
  ~ServeProcess();  // SIGKILL if still running
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Waits (up to `timeout`) until a stdout line starts with `prefix`; returns
  // that line without the prefix and the '\n'. REQUIREs that it came.
  std::string wait_for_line(const std::string& prefix,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // For `buoni serve`: waits for "listening on URL" and returns URL.
  std::string wait_for_url() { return wait_for_line("listening on "); }
  [[nodiscard]] std::string out() const;
  [[nodiscard]] pid_t pid() const { return pid_; }
  // Sends `signal` (SIGTERM by default) and waits; the exit code (128 +
  // signal number when a signal ended it). Idempotent. A process still
  // running `timeout` after the signal (a server that hangs while stopping)
  // is killed with SIGKILL, so this returns 137 instead of waiting forever.
  // A process that had already ended by itself gets the end of its stderr
  // printed to this process's stderr (a sanitizer's report, a crash), since
  // the file is usually in a temporary directory about to be removed.
  int stop(int signal = 15, std::chrono::milliseconds timeout = std::chrono::seconds(60));

 private:
  void wait_or_kill(int& status, std::chrono::milliseconds timeout);
  void report_early_exit(int status) const;

  std::string stderr_path_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int exit_code_ = -1;
  mutable std::mutex mutex_;
  std::string out_;
  std::thread drain_;
};

// `buoni --data DIR serve --listen 127.0.0.1:0 extra...`, up and listening.
struct ServedDir {
  ServedDir(const std::string& buoni, const std::string& dir,
            const std::vector<std::string>& extra = {});
  std::unique_ptr<ServeProcess> process;
  std::string url;  // http://127.0.0.1:PORT
  std::uint16_t port = 0;
};

struct Reply {
  int status = 0;                              // 0: no answer (the connection closed or failed)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  [[nodiscard]] std::string header(const std::string& lower_name) const;
};

// One keep-alive connection to 127.0.0.1:port; reconnects when closed.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One request; `headers` as {name, value}. A key, when given, is sent as
  // "Authorization: Bearer KEY"; Host is always sent. status 0 on failure.
  Reply call(const std::string& method, const std::string& target, const std::string& body = "",
             const std::string& key = "",
             const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sends `bytes` on a fresh connection, half-closes nothing, reads until the
// server closes or `timeout` passes; returns everything read.
std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace buoni::test
