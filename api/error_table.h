// The one table from result codes to HTTP statuses (API.md), and from
// infrastructure Status codes to the code and status a client sees.
// Pure; thread-safe.
#pragma once

#include <string_view>

#include "crypto/status.h"
#include "engine/code.h"

namespace buoni::api {

struct ErrorInfo {
  std::string_view code;  // stable name clients script against
  int http_status;
};

[[nodiscard]] ErrorInfo error_info(engine::Code code);
// Infrastructure failures: busy -> 503 unavailable (retry), the rest -> 503
// unavailable too (the engine stopped) or 500 internal for bugs.
[[nodiscard]] ErrorInfo error_info(const Status& status);
// Declines that a client may meet in normal operation: HTTP 402.
[[nodiscard]] bool is_decline(engine::Code code);

}  // namespace buoni::api
