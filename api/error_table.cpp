#include "api/error_table.h"

namespace buoni::api {

using engine::Code;

ErrorInfo error_info(Code code) {
  int status = 402;  // declines, unless listed below
  switch (code) {
    case Code::ok:
      status = 200;
      break;
    case Code::invalid_field:
    case Code::invalid_amount:
      status = 400;
      break;
    case Code::forbidden:
    case Code::merchant_not_allowed:
      status = 403;
      break;
    case Code::not_found:
    case Code::unknown_card:
      status = 404;
      break;
    case Code::idempotency_conflict:
    case Code::already_exists:
    case Code::already_issued:
    case Code::programme_not_ended:
      status = 409;
      break;
    default:
      break;
  }
  return {engine::code_name(code), status};
}

bool is_decline(Code code) {
  return error_info(code).http_status == 402;
}

ErrorInfo error_info(const Status& status) {
  switch (status.code()) {
    case StatusCode::ok:
      return {"ok", 200};
    case StatusCode::busy:
    case StatusCode::unavailable:
    case StatusCode::io_error:
      return {"unavailable", 503};
    case StatusCode::not_found:
      return {"not_found", 404};
    case StatusCode::already_exists:
      return {"already_exists", 409};
    case StatusCode::invalid_argument:
      return {"bad_request", 400};
    case StatusCode::corruption:
    case StatusCode::internal:
      return {"internal", 500};
  }
  return {"internal", 500};
}

}  // namespace buoni::api
