// docs/openapi.yaml, docs/api.md and the server's routes cannot drift apart:
// every route of api::route_list() (plus GET /metrics, which the server
// answers itself) is a path + method in the document, and the document has
// no path + method the server lacks. The YAML is read minimally: under
// `paths:`, a path is a line at two spaces' indent ("  /v1/cards/{card}:"), a
// method a line at four ("    get:"); no YAML library needed. docs/api.md
// (the contract in prose) has one heading "### `METHOD /path`" per route,
// and the set of those headings is the same set again.
#include <doctest/doctest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
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

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
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

// The route headings of a Markdown document: every line "### `METHOD /path`"
// outside fenced code blocks, as "METHOD /path". Any other line that starts
// "### `" is a problem (a malformed route heading), and so is a heading
// given twice or a fence left open: each is one line of `problems`.
struct Headings {
  std::set<std::string> operations;
  std::vector<std::string> problems;
};

Headings route_headings(std::istream& in) {
  constexpr std::string_view prefix = "### `";
  Headings out;
  std::string line;
  bool fenced = false;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.starts_with("```")) {
      fenced = !fenced;
      continue;
    }
    if (fenced || !line.starts_with(prefix)) continue;
    std::string inner = line.substr(prefix.size());
    const std::string where = "line " + std::to_string(number) + ": ";
    const std::size_t space = inner.find(' ');
    const bool well_formed =
        inner.size() > 2 && inner.back() == '`' && space != std::string::npos &&
        kMethods.count(lower(inner.substr(0, space))) == 1 &&
        inner.substr(0, space) == upper(inner.substr(0, space)) && space + 1 < inner.size() &&
        inner[space + 1] == '/' && inner.find_first_of(" `", space + 1) == inner.size() - 1;
    if (!well_formed) {
      out.problems.push_back(where + "a route heading must be exactly ### `METHOD /path`: " + line);
      continue;
    }
    inner.pop_back();  // the closing '`'
    if (!out.operations.insert(inner).second) {
      out.problems.push_back(where + "a route has a second heading: " + inner);
    }
  }
  if (fenced) out.problems.push_back("a code fence is not closed");
  return out;
}

// What the server answers: route_list() and GET /metrics.
std::set<std::string> served_operations() {
  std::set<std::string> served;
  for (const std::string& route : buoni::api::route_list()) served.insert(route);
  served.insert("GET /metrics");  // answered by the server before the handler
  return served;
}

std::set<std::string> openapi_operations() {
  std::ifstream file(std::string(BUONI_SOURCE_DIR) + "/docs/openapi.yaml");
  REQUIRE_MESSAGE(file.good(), "cannot read docs/openapi.yaml");
  return documented_operations(file);
}

}  // namespace

TEST_CASE("openapi: the document and the server have the same routes") {
  const std::set<std::string> documented = openapi_operations();
  REQUIRE(!documented.empty());

  const std::set<std::string> served = served_operations();
  REQUIRE(served.size() > 1);

  for (const std::string& op : served) {
    CHECK_MESSAGE(documented.count(op) == 1, "served but not in docs/openapi.yaml: " << op);
  }
  for (const std::string& op : documented) {
    CHECK_MESSAGE(served.count(op) == 1, "in docs/openapi.yaml but not served: " << op);
  }
}

TEST_CASE(
    "openapi: docs/api.md has one heading for each route of docs/openapi.yaml and the server") {
  std::ifstream file(std::string(BUONI_SOURCE_DIR) + "/docs/api.md");
  REQUIRE_MESSAGE(file.good(), "cannot read docs/api.md");
  const Headings headings = route_headings(file);
  for (const std::string& problem : headings.problems) {
    CHECK_MESSAGE(false, "docs/api.md, " << problem);
  }
  const std::set<std::string>& described = headings.operations;
  REQUIRE(!described.empty());

  const std::set<std::string> documented = openapi_operations();
  REQUIRE(!documented.empty());
  for (const std::string& op : documented) {
    CHECK_MESSAGE(described.count(op) == 1,
                  "in docs/openapi.yaml but no ### `" << op << "` heading in docs/api.md");
  }
  for (const std::string& op : described) {
    CHECK_MESSAGE(documented.count(op) == 1,
                  "a heading in docs/api.md but not in docs/openapi.yaml: " << op);
  }

  const std::set<std::string> served = served_operations();
  for (const std::string& op : served) {
    CHECK_MESSAGE(described.count(op) == 1,
                  "served but no ### `" << op << "` heading in docs/api.md");
  }
  for (const std::string& op : described) {
    CHECK_MESSAGE(served.count(op) == 1, "a heading in docs/api.md but not served: " << op);
  }
}

TEST_CASE("openapi: the heading reader finds route headings and refuses malformed ones") {
  std::istringstream md(
      "# Title\n"
      "### `GET /a/{x}`\n"
      "### Not a route heading\n"
      "## `POST /not-level-3`\n"
      "```\n"
      "### `GET /in-a-code-block`\n"
      "```\n"
      "### `POST /a/{x}/b`\r\n"
      "### `get /lower-case`\n"
      "### `GET /a/{x}` and more\n"
      "### `FETCH /b`\n"
      "### `GET no-slash`\n"
      "### `GET /a/{x}`\n");
  Headings h = route_headings(md);
  CHECK(h.operations == std::set<std::string>{"GET /a/{x}", "POST /a/{x}/b"});
  REQUIRE(h.problems.size() == 5);
  CHECK(h.problems[0].find("line 9: ") == 0);
  CHECK(h.problems[1].find("line 10: ") == 0);
  CHECK(h.problems[2].find("line 11: ") == 0);
  CHECK(h.problems[3].find("line 12: ") == 0);
  CHECK(h.problems[4] == "line 13: a route has a second heading: GET /a/{x}");

  std::istringstream open_fence("### `GET /a`\n```\n");
  CHECK(route_headings(open_fence).problems ==
        std::vector<std::string>{"a code fence is not closed"});
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
