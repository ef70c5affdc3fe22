// docs/openapi.yaml and the server's routes cannot drift apart: every route
// of api::route_list() (plus GET /metrics, which the server answers itself)
// is a path + method in the document, and the document has no path + method
// the server lacks. The YAML is read minimally: under `paths:`, a path is a
// line at two spaces' indent ("  /v1/cards/{card}:"), a method a line at four
// ("    get:"); no YAML library needed.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "api/handler.h"

namespace {

const std::set<std::string> kMethods{"get",     "put",  "post",  "delete",
                                     "options", "head", "patch", "trace"};

std::string upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

// Without a trailing comment and trailing spaces.
std::string trimmed(std::string line) {
  if (auto hash = line.find(" #"); hash != std::string::npos) line.erase(hash);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  return line;
}

std::size_t indent_of(const std::string& line) {
  std::size_t n = 0;
  while (n < line.size() && line[n] == ' ') ++n;
  return n;
}

// "METHOD /path" for every operation under `paths:`.
std::set<std::string> documented_operations(std::istream& in) {
  std::set<std::string> ops;
  std::string line, path;
  bool in_paths = false;
  while (std::getline(in, line)) {
    line = trimmed(line);
    if (line.empty() || line[indent_of(line)] == '#') continue;
    std::size_t indent = indent_of(line);
    if (indent == 0) {
      in_paths = line == "paths:";
      continue;
    }
    if (!in_paths) continue;
    if (indent == 2) {
      REQUIRE_MESSAGE(line.back() == ':', "a path line must end in ':': " << line);
      path = line.substr(2, line.size() - 3);
      if (path.size() >= 2 && (path.front() == '"' || path.front() == '\'')) {
        path = path.substr(1, path.size() - 2);
      }
      REQUIRE_MESSAGE(path.starts_with('/'), "not a path: " << line);
    } else if (indent == 4 && line.back() == ':') {
      std::string key = line.substr(4, line.size() - 5);
      if (kMethods.count(key)) {
        REQUIRE_MESSAGE(!path.empty(), "a method before any path: " << line);
        bool fresh = ops.insert(upper(key) + " " + path).second;
        CHECK_MESSAGE(fresh, "documented twice: " << upper(key) << " " << path);
      }
    }
  }
  return ops;
}

}  // namespace

TEST_CASE("openapi: the document and the server have the same routes") {
  std::ifstream file(std::string(BUONI_SOURCE_DIR) + "/docs/openapi.yaml");
  REQUIRE_MESSAGE(file.good(), "cannot read docs/openapi.yaml");
  const std::set<std::string> documented = documented_operations(file);
  REQUIRE(!documented.empty());

  std::set<std::string> served;
  for (const std::string& route : buoni::api::route_list()) served.insert(route);
  served.insert("GET /metrics");  // answered by the server before the handler
  REQUIRE(served.size() > 1);

  for (const std::string& op : served) {
    CHECK_MESSAGE(documented.count(op) == 1, "served but not in docs/openapi.yaml: " << op);
  }
  for (const std::string& op : documented) {
    CHECK_MESSAGE(served.count(op) == 1, "in docs/openapi.yaml but not served: " << op);
  }
}

TEST_CASE("openapi: the minimal reader finds paths and methods") {
  std::istringstream yaml(
      "openapi: 3.0.3\n"
      "paths:\n"
      "  /a/{x}:\n"
      "    parameters:\n"
      "      - $ref: '#/components/parameters/X'\n"
      "    get:\n"
      "      summary: a\n"
      "    post:   # trailing comment\n"
      "      summary: b\n"
      "  \"/b\":\n"
      "    delete:\n"
      "components:\n"
      "  schemas:\n"
      "    get:\n");
  std::set<std::string> ops = documented_operations(yaml);
  CHECK(ops == std::set<std::string>{"GET /a/{x}", "POST /a/{x}", "DELETE /b"});
}
