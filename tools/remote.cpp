#include "tools/remote.h"

#include <iostream>

#include "crypto/card_number.h"
#include "crypto/token.h"

namespace buoni::tools {

namespace json = boost::json;

std::string ApiAnswer::error_code() const {
  const json::value* e = body.if_contains("error");
  return e && e->is_object() ? field(e->get_object(), "code") : "";
}

StatusOr<std::unique_ptr<Remote>> Remote::open(const Common& common) {
  BUONI_ASSIGN_OR_RETURN(ServerUrl url, parse_server_url(common.server));
  BUONI_ASSIGN_OR_RETURN(auto client, HttpClient::create(url));
  return std::unique_ptr<Remote>(new Remote(std::move(client), common.key));
}

StatusOr<ApiAnswer> Remote::call(const ApiCall& api_call) {
  std::vector<HttpHeader> headers{{"Authorization", "Bearer " + key_}};
  if (!api_call.idempotency_key.empty()) {
    headers.push_back({"Idempotency-Key", api_call.idempotency_key});
  }
  std::string body = api_call.body ? json::serialize(*api_call.body) : "";
  BUONI_ASSIGN_OR_RETURN(HttpAnswer http,
                         client_->send(api_call.method, api_call.target, headers, body));
  ApiAnswer answer;
  answer.status = http.status;
  answer.replayed = http.header("Idempotent-Replayed") == "true";
  json::error_code ec;
  json::value parsed = json::parse(http.body, ec);
  if (ec || !parsed.is_object()) {
    return unavailable("the server at " + client_->url().text + " answered HTTP " +
                       std::to_string(http.status) +
                       " without a JSON object (is it a buoni server?)");
  }
  answer.body = std::move(parsed.get_object());
  return answer;
}

int exit_code_of(const ApiAnswer& answer) {
  int s = answer.status;
  if (answer.ok()) return exit_ok;
  if (s == 400 || s == 413) return exit_usage;
  if (s == 402 || s == 404 || s == 409) return exit_declined;
  if (s == 403 && answer.error_code() == "merchant_not_allowed") return exit_declined;
  return exit_failed;
}

int print_answer(const Common& common, const ApiAnswer& answer, JsonText text) {
  int code = exit_code_of(answer);
  if (code == exit_ok) return print_ok(common, answer.body, text, answer.replayed);
  if (code != exit_failed) return print_error(common, answer.body, code);
  std::string what = "the server refused (HTTP " + std::to_string(answer.status) + ")";
  if (answer.status == 401 || answer.status == 403) {
    what = "the server refused the key (HTTP " + std::to_string(answer.status) +
           "; --server needs the admin key ak_... that buoni init printed, in --key or "
           "BUONI_KEY)";
  }
  return print_error(common, answer.body, code, what);
}

int run_remote(const Common& common, const ApiCall& api_call, JsonText text) {
  auto remote = Remote::open(common);
  if (!remote.ok()) return report_status(common, remote.status());
  auto answer = (*remote)->call(api_call);
  if (!answer.ok()) return report_status(common, answer.status());
  return print_answer(common, *answer, text);
}

std::string path_segment(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || c == '~';
    if (plain) {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

std::string card_segment(std::string_view text) {
  if (looks_like_token(text)) return path_segment(text);
  return format_card_id(parse_card("--card", text));
}

}  // namespace buoni::tools
