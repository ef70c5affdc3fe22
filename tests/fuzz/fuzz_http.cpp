// Fuzz target: the HTTP request handler over raw bytes. The bytes are parsed
// as the server parses them (a Beast request_parser with the server's
// limits: headers 8 KiB, body 64 KiB); a complete request goes to
// handle_request with an ApiContext over the fuzz world (the seed corpus
// holds requests of every route with the world's real keys, cards, tokens
// and ids). Properties: those of checked_handle (no 500; JSON error objects),
// route_of answers for every request, and the answer serializes.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/write.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>

#include "engine/limits.h"
#include "fuzz_world.h"

namespace {

using buoni::fuzz::fuzz_check;
using buoni::fuzz::World;
namespace http = buoni::api::http;

// The request in `bytes`, or nullopt when the parser refuses it or it is
// not complete.
std::optional<buoni::api::Request> parse(std::string_view bytes) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(buoni::limits::http_header_bytes_max);
  parser.body_limit(buoni::limits::http_body_bytes_max);
  parser.eager(true);
  while (!parser.is_done()) {
    boost::system::error_code ec;
    const std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    bytes.remove_prefix(used);
    if (ec || used == 0) return std::nullopt;  // refused, or needs bytes that never come
  }
  return parser.release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<buoni::api::Request> req = parse(bytes);
  if (!req) return 0;
  World& world = World::get();
  static_cast<void>(buoni::api::route_of(*req));
  buoni::api::Response res = buoni::fuzz::checked_handle(world, *req);
  std::ostringstream out;
  out << res;
  fuzz_check(!out.str().empty(), "an answer serialized to nothing");
  World::after_run();
  return 0;
}
