// The --server mode of the `buoni` command: an operator command becomes one
// call of the server's admin API (api/handler.h), made with the admin key,
// and the answer is printed as local mode prints the same operation: with
// --json the answer's object as it is (errors as {"error": {...}}), else the
// same human text (the commands' JsonText makers serve both modes).
//
// Exit codes of an answer: 2xx 0; 400 and 413 (bad input) 2; 402, 404, 409
// and 403 merchant_not_allowed (declines) 1; 401 and 403 (the key), 429, 5xx
// and anything else 3. A server that cannot be reached is 3 too, with one
// line naming it ("cannot reach http://...: connection refused").
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tools/cli.h"
#include "tools/http_client.h"

namespace buoni::tools {

struct ApiCall {
  std::string method;                       // "GET", "POST"
  std::string target;                       // "/v1/programmes" (path and query)
  std::optional<boost::json::object> body;  // sent as JSON when set
  std::string idempotency_key;              // the Idempotency-Key header; "" none
};

struct ApiAnswer {
  int status = 0;
  bool replayed = false;     // Idempotent-Replayed: true
  boost::json::object body;  // the JSON object answered
  [[nodiscard]] bool ok() const { return status >= 200 && status < 300; }
  // The error code of an error answer; "" otherwise.
  [[nodiscard]] std::string error_code() const;
};

// One connection (kept alive) to the server of --server, with the admin key.
class Remote {
 public:
  [[nodiscard]] static StatusOr<std::unique_ptr<Remote>> open(const Common& common);
  // Sends the call; a network failure, or an answer that is not a JSON
  // object, is a Status (unavailable).
  [[nodiscard]] StatusOr<ApiAnswer> call(const ApiCall& api_call);

 private:
  Remote(std::unique_ptr<HttpClient> client, std::string key)
      : client_(std::move(client)), key_(std::move(key)) {}
  std::unique_ptr<HttpClient> client_;
  std::string key_;
};

// The exit code of an answer (table above).
[[nodiscard]] int exit_code_of(const ApiAnswer& answer);
// Prints an answer as local mode prints the same operation's result;
// returns its exit code.
int print_answer(const Common& common, const ApiAnswer& answer, JsonText text);
// Opens the connection, makes one call, prints the answer.
int run_remote(const Common& common, const ApiCall& api_call, JsonText text);

// A path segment: percent-encodes everything but A-Z a-z 0-9 - . _ ~.
[[nodiscard]] std::string path_segment(std::string_view text);
// A --card argument as a path segment: a token goes as it is (the server
// verifies it); a number must be well formed (else a UsageError) and goes
// as the card's id.
[[nodiscard]] std::string card_segment(std::string_view text);

}  // namespace buoni::tools
