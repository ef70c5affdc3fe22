#include "support.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <random>
#include <fstream>
#include <sstream>
#include <system_error>

extern char** environ;

namespace buoni::test {

namespace json = boost::json;

Ran run_program(const std::string& program, const std::vector<std::string>& args,
                const RunOptions& options) {
  using Clock = std::chrono::steady_clock;
  Ran r;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    r.err = "pipe failed";
    return r;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    r.err = "pipe failed";
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<std::string> all{program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env;
  std::vector<char*> envp;
  char** child_env = environ;
  if (options.env) {
    env = *options.env;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    child_env = envp.data();
  }
  pid_t pid = -1;
  int spawned = posix_spawnp(&pid, program.c_str(), &fa, nullptr, argv.data(), child_env);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  if (spawned != 0) {
    close(out[0]);
    close(err[0]);
    r.err = "posix_spawn " + program + " failed";
    return r;
  }
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  const auto deadline = Clock::now() + options.timeout;
  while (open_fds > 0 && Clock::now() < deadline) {
    if (poll(fds, 2, 1000) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[8192];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  if (open_fds > 0) kill(pid, SIGKILL);  // hung: shows as exit 137
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

TempDir::TempDir(std::string pattern) {
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  path = pattern;
}

std::string tmpfs_pattern(const std::string& name) {
  std::error_code ec;
  const bool shm = std::filesystem::is_directory("/dev/shm", ec);
  return std::string(shm ? "/dev/shm/" : "/tmp/") + name + "-XXXXXX";
}

std::uint64_t run_seed() {
  static const std::uint64_t seed = []() -> std::uint64_t {
    if (const char* env = std::getenv("BUONI_SEED"); env != nullptr && *env != '\0') {
      return std::strtoull(env, nullptr, 10);
    }
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
  }();
  return seed;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

json::object parse_object(const std::string& text) {
  INFO("not one JSON object: " << text);
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  REQUIRE(!ec);
  REQUIRE(v.is_object());
  return v.as_object();
}

std::string error_code(const std::string& out) {
  boost::system::error_code ec;
  json::value v = json::parse(out, ec);
  if (ec || !v.is_object()) return "";
  const json::value* e = v.as_object().if_contains("error");
  if (!e || !e->is_object() || !e->as_object().if_contains("code")) return "";
  const json::value& code = e->as_object().at("code");
  return code.is_string() ? std::string(code.as_string()) : "";
}

std::int64_t int_field(const json::object& o, const char* name) {
  INFO("field " << name << " in " << json::serialize(o));
  const json::value* v = o.if_contains(name);
  REQUIRE(v != nullptr);
  REQUIRE(v->is_int64());
  return v->as_int64();
}

std::string str_field(const json::object& o, const char* name) {
  INFO("field " << name << " in " << json::serialize(o));
  const json::value* v = o.if_contains(name);
  REQUIRE(v != nullptr);
  REQUIRE(v->is_string());
  return std::string(v->as_string());
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool one_line(const std::string& text) {
  return !text.empty() && text.back() == '\n' && count_of(text, "\n") == 1;
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string day_string(int offset_days) {
  std::time_t t = std::time(nullptr) + static_cast<std::time_t>(offset_days) * 86400;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

}  // namespace buoni::test
