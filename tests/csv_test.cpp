// The CSV reader of bulk issuance (tools/csv.h): RFC 4180 fields, line
// numbers as an operator's editor shows them, and its three errors.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tools/csv.h"

namespace {

using buoni::tools::CsvFile;
using buoni::tools::parse_csv;
using Fields = std::vector<std::string>;

constexpr std::size_t many = 1000;

// Parses text that must parse.
CsvFile parsed(std::string_view text, std::size_t rows_max = many) {
  CsvFile f = parse_csv(text, rows_max);
  INFO("text: " << std::string(text) << "\nerror: " << f.error);
  REQUIRE(f.error.empty());
  return f;
}

std::vector<std::size_t> line_numbers(const CsvFile& f) {
  std::vector<std::size_t> out;
  for (const auto& row : f.rows) out.push_back(row.line);
  return out;
}

}  // namespace

TEST_CASE("a header and rows") {
  CsvFile f = parsed("beneficiary_ref,amount_cents,household_size\nFAM-1,2500,3\nFAM-2,100,1\n");
  CHECK(f.header == Fields{"beneficiary_ref", "amount_cents", "household_size"});
  REQUIRE(f.rows.size() == 2);
  CHECK(f.rows[0].fields == Fields{"FAM-1", "2500", "3"});
  CHECK(f.rows[1].fields == Fields{"FAM-2", "100", "1"});
  CHECK(line_numbers(f) == std::vector<std::size_t>{2, 3});
}

TEST_CASE("the last line may end with a newline or not") {
  CsvFile with = parsed("a,b\n1,2\n3,4\n");
  CsvFile without = parsed("a,b\n1,2\n3,4");
  CHECK(with.header == without.header);
  REQUIRE(with.rows.size() == 2);
  REQUIRE(without.rows.size() == 2);
  CHECK(without.rows[1].fields == Fields{"3", "4"});
  CHECK(with.rows[1].fields == without.rows[1].fields);
  CHECK(line_numbers(without) == std::vector<std::size_t>{2, 3});

  CsvFile header_only = parsed("a,b");
  CHECK(header_only.header == Fields{"a", "b"});
  CHECK(header_only.rows.empty());
  CHECK(parsed("a,b\n").rows.empty());
}

TEST_CASE("empty fields and field counts are kept as written") {
  CsvFile f = parsed("a,b,c\n,,\nx,,z\nonly\n1,2,3,4\n");
  REQUIRE(f.rows.size() == 4);
  CHECK(f.rows[0].fields == Fields{"", "", ""});
  CHECK(f.rows[1].fields == Fields{"x", "", "z"});
  CHECK(f.rows[2].fields == Fields{"only"});  // the caller reports the count
  CHECK(f.rows[3].fields == Fields{"1", "2", "3", "4"});
  // Spaces are data, not padding.
  CHECK(parsed("a,b\n x , y \n").rows.at(0).fields == Fields{" x ", " y "});
}

TEST_CASE("quoted fields hold commas, newlines and doubled quotes") {
  CsvFile f = parsed(
      "ref,amount,note\n"
      "\"Rossi, Mario\",100,\"say \"\"hi\"\"\"\n"
      "\"two\nlines\",200,\"\"\n"
      "\"\"\"\",300,\"a,\"\"b\"\",c\"\n");
  REQUIRE(f.rows.size() == 3);
  CHECK(f.rows[0].fields == Fields{"Rossi, Mario", "100", "say \"hi\""});
  CHECK(f.rows[1].fields == Fields{"two\nlines", "200", ""});
  CHECK(f.rows[2].fields == Fields{"\"", "300", "a,\"b\",c"});
  // The quoted header is read the same way.
  CHECK(parsed("\"beneficiary_ref\",\"amount_cents\"\nA,1\n").header ==
        Fields{"beneficiary_ref", "amount_cents"});
}

TEST_CASE("a quoted newline makes the next row's line number jump") {
  CsvFile f = parsed("a,b\nx,\"1\n2\n3\"\ny,4\nz,5\n");
  REQUIRE(f.rows.size() == 3);
  CHECK(f.rows[0].fields == Fields{"x", "1\n2\n3"});
  CHECK(line_numbers(f) == std::vector<std::size_t>{2, 5, 6});
  // A quoted newline in the header moves the first row too.
  CHECK(line_numbers(parsed("\"a\nb\",c\n1,2\n")) == std::vector<std::size_t>{3});
}

TEST_CASE("CRLF line ends: no stray carriage returns, same line numbers") {
  CsvFile f = parsed("a,b\r\n1,2\r\n\"q\",3\r\n4,5");
  CHECK(f.header == Fields{"a", "b"});
  REQUIRE(f.rows.size() == 3);
  CHECK(f.rows[0].fields == Fields{"1", "2"});
  CHECK(f.rows[1].fields == Fields{"q", "3"});
  CHECK(f.rows[2].fields == Fields{"4", "5"});
  CHECK(line_numbers(f) == std::vector<std::size_t>{2, 3, 4});
  // A CRLF inside quotes is data; the next row's number still counts it.
  CsvFile q = parsed("a,b\r\n\"x\r\ny\",1\r\nz,2\r\n");
  REQUIRE(q.rows.size() == 2);
  CHECK(q.rows[0].fields == Fields{"x\r\ny", "1"});
  CHECK(line_numbers(q) == std::vector<std::size_t>{2, 4});
}

TEST_CASE("a UTF-8 byte order mark is skipped") {
  CsvFile f = parsed(
      "\xEF\xBB\xBF"
      "beneficiary_ref,amount_cents\nA,1\n");
  CHECK(f.header == Fields{"beneficiary_ref", "amount_cents"});
  CHECK(line_numbers(f) == std::vector<std::size_t>{2});
  // Only at the start: elsewhere it is data.
  CHECK(parsed("a\n\xEF\xBB\xBFx\n").rows.at(0).fields == Fields{"\xEF\xBB\xBFx"});
}

TEST_CASE("blank lines are skipped but still counted") {
  CsvFile f = parsed("\n\na,b\n\n1,2\n\r\n\n3,4\n\n");
  CHECK(f.header == Fields{"a", "b"});
  REQUIRE(f.rows.size() == 2);
  CHECK(f.rows[0].fields == Fields{"1", "2"});
  CHECK(f.rows[1].fields == Fields{"3", "4"});
  CHECK(line_numbers(f) == std::vector<std::size_t>{5, 8});
}

TEST_CASE("an unterminated quote is an error naming the line where its row starts") {
  CsvFile f = parse_csv("a,b\n1,2\n\"open,3\n4,5\n", many);
  CHECK(f.error == "line 3: a quoted field is never closed");
  CsvFile later = parse_csv("a,b\n1,2\n\"two\nlines\",3\n4,\"never\n", many);
  CHECK(later.error == "line 5: a quoted field is never closed");
  CsvFile header = parse_csv("\"a,b\n1,2\n", many);
  CHECK(header.error == "line 1: a quoted field is never closed");
  // A doubled quote at the end does not close the field.
  CHECK(!parse_csv("a\n\"x\"\"\n", many).error.empty());
  CHECK(parse_csv("a\n\"x\"\"\"\n", many).error.empty());
}

TEST_CASE("more rows than rows_max is an error; exactly rows_max is not") {
  const std::string text = "a\n1\n2\n3\n";
  CHECK(parsed(text, 3).rows.size() == 3);
  CsvFile over = parse_csv(text, 2);
  CHECK(over.error == "more than 2 rows");
  // Blank lines do not count as rows.
  CHECK(parsed("a\n1\n\n\n2\n", 2).rows.size() == 2);
  CHECK(parse_csv("a\n1\n", 0).error == "more than 0 rows");
  CHECK(parsed("a\n", 0).rows.empty());
}

TEST_CASE("an empty file is an error: nothing, only blank lines, only a BOM") {
  for (const char* text : {"", "\n", "\n\n\r\n", "\xEF\xBB\xBF", "\xEF\xBB\xBF\n"}) {
    CAPTURE(text);
    CsvFile f = parse_csv(text, many);
    CHECK(f.error == "the file is empty (no header line)");
    CHECK(f.header.empty());
    CHECK(f.rows.empty());
  }
}
