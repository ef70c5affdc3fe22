// Status and StatusOr: the one result type that crosses module boundaries.
//
// Contract (modelled on Abseil's absl::Status):
//  - A Status is either ok() or carries a StatusCode and a message. No
//    exception crosses a module boundary; errors of RocksDB, libsodium,
//    OpenSSL and the file system are converted into a Status at the edge.
//  - Status is for infrastructure failures (I/O, corruption, bad files).
//    A business decline (insufficient funds, blocked card) is NOT a Status:
//    it is an engine::Code in a successful result. A broken invariant is
//    neither: it is an assertion that stops the process (BUONI_ASSERT).
//  - Both types are [[nodiscard]]: ignoring one is a compile warning.
//  - Thread safety: values; safe to copy and move between threads.
//
// This header lives in crypto/ because crypto is the lowest layer and every
// other layer depends on it (see docs/architecture.md).
#pragma once

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace buoni {

enum class StatusCode : unsigned char {
  ok = 0,
  invalid_argument,  // malformed input to a function (bad file contents, bad flag)
  not_found,         // a file or object that must exist does not
  already_exists,    // a file or object that must not exist does
  io_error,          // the disk or OS refused (open, write, fsync)
  corruption,        // persisted bytes that cannot be decoded or do not verify
  unavailable,       // the engine stopped after a failed write, or is shutting down
  busy,              // a bounded queue is full, or another process holds a lock
  internal,          // a library call failed in a way we do not classify
};

[[nodiscard]] constexpr std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::ok:
      return "ok";
    case StatusCode::invalid_argument:
      return "invalid_argument";
    case StatusCode::not_found:
      return "not_found";
    case StatusCode::already_exists:
      return "already_exists";
    case StatusCode::io_error:
      return "io_error";
    case StatusCode::corruption:
      return "corruption";
    case StatusCode::unavailable:
      return "unavailable";
    case StatusCode::busy:
      return "busy";
    case StatusCode::internal:
      return "internal";
  }
  return "unknown";
}

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }
  [[nodiscard]] bool ok() const { return code_ == StatusCode::ok; }
  [[nodiscard]] StatusCode code() const { return code_; }
  [[nodiscard]] const std::string& message() const { return message_; }
  // "io_error: fsync failed: No space left on device"
  [[nodiscard]] std::string to_string() const {
    if (ok()) return "ok";
    return std::string(status_code_name(code_)) + ": " + message_;
  }

 private:
  StatusCode code_ = StatusCode::ok;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return {StatusCode::invalid_argument, std::move(m)};
}
inline Status not_found(std::string m) {
  return {StatusCode::not_found, std::move(m)};
}
inline Status already_exists(std::string m) {
  return {StatusCode::already_exists, std::move(m)};
}
inline Status io_error(std::string m) {
  return {StatusCode::io_error, std::move(m)};
}
inline Status corruption(std::string m) {
  return {StatusCode::corruption, std::move(m)};
}
inline Status unavailable(std::string m) {
  return {StatusCode::unavailable, std::move(m)};
}
inline Status busy(std::string m) {
  return {StatusCode::busy, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {StatusCode::internal, std::move(m)};
}

// A value or a non-ok Status. Reading value() of an error is a bug (asserts).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) {
      std::fputs("StatusOr constructed from an ok Status\n", stderr);
      std::abort();
    }
  }
  [[nodiscard]] bool ok() const { return status_.ok(); }
  [[nodiscard]] const Status& status() const { return status_; }
  [[nodiscard]] T& value() & {
    check();
    return *value_;
  }
  [[nodiscard]] const T& value() const& {
    check();
    return *value_;
  }
  [[nodiscard]] T&& value() && {
    check();
    return std::move(*value_);
  }
  T* operator->() {
    check();
    return &*value_;
  }
  const T* operator->() const {
    check();
    return &*value_;
  }
  T& operator*() & {
    check();
    return *value_;
  }
  const T& operator*() const& {
    check();
    return *value_;
  }

 private:
  void check() const {
    if (!value_) {
      std::fprintf(stderr, "StatusOr::value() on error: %s\n", status_.to_string().c_str());
      std::abort();
    }
  }
  Status status_;
  std::optional<T> value_;
};

}  // namespace buoni

// Propagate a non-ok Status to the caller.
#define BUONI_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::buoni::Status buoni_status_ = (expr);        \
    if (!buoni_status_.ok()) return buoni_status_; \
  } while (0)

#define BUONI_CONCAT_INNER(a, b) a##b
#define BUONI_CONCAT(a, b) BUONI_CONCAT_INNER(a, b)
// BUONI_ASSIGN_OR_RETURN(auto x, f()): x = value of f() or return its Status.
#define BUONI_ASSIGN_OR_RETURN(lhs, expr) \
  BUONI_ASSIGN_OR_RETURN_IMPL(BUONI_CONCAT(buoni_statusor_, __LINE__), lhs, expr)
#define BUONI_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

// A broken invariant: crash loudly, in every build type (TIGER_STYLE).
#define BUONI_ASSERT(cond)                                                                \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "invariant broken: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
