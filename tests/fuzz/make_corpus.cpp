// make_corpus: writes the fuzz targets' seed corpora from the fuzz world
// (fuzz_world.h), so the seeds hold real tokens, card numbers, ids and keys.
//   make_corpus DIR      writes DIR/<target>/<name> (tests/fuzz/corpus)
// Deterministic: the world is; run it again after a change of the world or
// of the formats and commit what changed.
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/card_number.h"
#include "engine/export.h"
#include "fuzz_world.h"
#include "tests/percent.h"

namespace {

namespace fs = std::filesystem;
namespace http = buoni::api::http;
using buoni::fuzz::World;
using buoni::test::percent_encoded;

fs::path g_root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(g_root / target);
  std::ofstream out(g_root / target / name, std::ios::binary | std::ios::trunc);
  out << bytes;
}

void token_seeds(const World& w) {
  put("token", "qr", w.card1_token);
  put("token", "link", w.card1_link);
  put("token", "qr_pinned", w.card2_token);
  put("token", "qr_truncated", w.card1_token.substr(0, 60));
  put("token", "link_short", w.card1_link.substr(0, 105));
  put("token", "number", w.card1_number);
  put("token", "prefix_only", "BS1:");
  put("token", "qr_bad_symbol", w.card1_token.substr(0, 30) + "~" + w.card1_token.substr(31));
}

void card_number_seeds(const World& w) {
  put("card_number", "number", w.card1_number);
  put("card_number", "id", w.card1_id);
  put("card_number", "pinned", w.card2_number);
  std::string typed = w.card1_number;
  for (char& c : typed) c = (c == '-') ? ' ' : static_cast<char>(std::tolower(c));
  put("card_number", "typed", typed);
  put("card_number", "ilo", "IL0O-1111-2222-3333-4");
  put("card_number", "too_long", w.card1_number + "77");
  put("card_number", "check_symbols", "0000-0000-0000-0000-*");
}

// One api_body seed: the route byte (fuzz_api_body.cpp's table) and a body.
void body(int route, const std::string& name, const std::string& json) {
  put("api_body", name, std::string(1, static_cast<char>(route)) + json);
}

void api_body_seeds(const World& w) {
  const std::string card = "\"card\":\"" + w.card1_number + "\"";
  body(0, "redeem", "{" + card + ",\"amount_cents\":250,\"reference\":\"r-1\"}");
  body(0, "redeem_token", "{\"card\":\"" + w.card1_token + "\",\"amount_cents\":1}");
  body(0, "redeem_pin", "{\"card\":\"" + w.card2_number + "\",\"amount_cents\":5,\"pin\":\"12345\"}");
  body(1, "authorize", "{" + card + ",\"amount_cents\":300,\"expires_in_s\":600}");
  body(2, "capture", "{\"amount_cents\":500}");
  body(3, "void", "");
  body(4, "refund", "{\"redemption_id\":\"" + w.redemption_id + "\",\"amount_cents\":100}");
  body(5, "programme",
       "{\"id\":\"p2\",\"name\":\"Due\",\"budget_cents\":100000,\"valid_from\":\"2026-02-01\","
       "\"valid_until\":\"2026-12-31\",\"require_pin\":true,\"max_redemption_cents\":5000,"
       "\"daily_limit_cents\":10000}");
  body(6, "close", "{}");
  body(7, "merchant",
       "{\"id\":\"m2\",\"name\":\"Forno\",\"vat_number\":\"01234567897\","
       "\"programmes\":[\"food\",\"pinned\"]}");
  body(8, "card", "{\"programme\":\"food\",\"beneficiary_ref\":\"fam-9\",\"amount_cents\":0}");
  body(9, "load", "{\"amount_cents\":700}");
  body(10, "block", "");
  body(11, "unblock", "{}");
  body(12, "unlock_pin", " ");
  body(13, "replace", "{}");
  body(14, "settle", "{\"from\":\"2026-01-01\",\"to\":\"2026-01-31\"}");
  body(0, "duplicate_key", "{" + card + ",\"amount_cents\":1,\"amount_cents\":2}");
  body(0, "nested", "{\"card\":[{\"a\":{\"b\":[1,2.5e3,null,true]}}],\"amount_cents\":-1}");
  body(5, "unicode", "{\"id\":\"p\\u00e8\",\"name\":\"\\ud83d\\ude00\"}");
}

std::string wire(http::verb method, const std::string& target, const std::string& body,
                 std::string_view key, std::string_view idem) {
  std::ostringstream out;
  out << buoni::fuzz::make_request(method, target, body, key, idem);
  return out.str();
}

void http_seeds(const World& w) {
  using buoni::fuzz::kAdminKey;
  using buoni::fuzz::kMerchantKey;
  const auto post = http::verb::post;
  const auto get = http::verb::get;
  const std::string card = "\"card\":\"" + w.card1_number + "\"";
  put("http", "redeem", wire(post, "/v1/redemptions", "{" + card + ",\"amount_cents\":250}",
                             kMerchantKey, "k-1"));
  put("http", "authorize", wire(post, "/v1/authorizations", "{" + card + ",\"amount_cents\":3}",
                                kMerchantKey, "k-2"));
  put("http", "capture", wire(post, "/v1/authorizations/" + w.hold_id + "/capture",
                              "{\"amount_cents\":5}", kMerchantKey, "k-3"));
  put("http", "void",
      wire(post, "/v1/authorizations/" + w.hold_id + "/void", "", kMerchantKey, "k-4"));
  put("http", "refund",
      wire(post, "/v1/refunds",
           "{\"redemption_id\":\"" + w.redemption_id + "\",\"amount_cents\":1}", kMerchantKey,
           "k-5"));
  put("http", "card_shop", wire(get, "/v1/cards/" + w.card1_number, "", kMerchantKey, ""));
  put("http", "card_admin", wire(get, "/v1/cards/" + w.card1_link, "", kAdminKey, ""));
  put("http", "transactions",
      wire(get, "/v1/transactions?from=2026-02-01&to=2026-03-01T00:00:00Z&limit=2&cursor=s1", "",
           kMerchantKey, ""));
  put("http", "programme", wire(get, "/v1/programmes/food", "", kAdminKey, ""));
  put("http", "close", wire(post, "/v1/programmes/food/close", "", kAdminKey, "a-1"));
  put("http", "merchants", wire(get, "/v1/merchants?after=a&limit=5", "", kAdminKey, ""));
  put("http", "card_issue",
      wire(post, "/v1/cards", "{\"programme\":\"food\",\"beneficiary_ref\":\"f\",\"amount_cents\":1}",
           kAdminKey, ""));
  for (const char* action : {"loads", "block", "unblock", "unlock-pin", "replace"}) {
    put("http", std::string("card_") + action,
        wire(post, "/v1/cards/" + w.card1_id + "/" + action,
             std::string(action) == "loads" ? "{\"amount_cents\":9}" : "", kAdminKey, ""));
  }
  put("http", "settle", wire(post, "/v1/settlements", "{\"from\":\"2026-02-01\",\"to\":\"2026-02-09\"}",
                             kAdminKey, "s-1"));
  put("http", "public", wire(get, "/v1/public/cards/" + w.card1_link, "", "", ""));
  put("http", "page", wire(get, "/c/" + w.card1_link, "", "", ""));
  put("http", "healthz", wire(get, "/healthz", "", "", ""));
  put("http", "readyz", wire(get, "/readyz", "", "", ""));
  put("http", "head", wire(http::verb::head, "/v1/redemptions", "", kMerchantKey, ""));
  put("http", "chunked",
      "POST /v1/redemptions HTTP/1.1\r\nAuthorization: Bearer " + std::string(kMerchantKey) +
          "\r\nIdempotency-Key: c-1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"car\r\n0\r\n\r\n");
  put("http", "percent", wire(get, "/v1/public/cards/" + percent_encoded(w.card2_token), "", "", ""));
  put("http", "page_bad", wire(get, "/c/BS1%3A" + w.card1_token.substr(4, 20) + "?x=%zz", "", "", ""));
}

void csv_seeds() {
  put("csv", "issue", "beneficiary_ref,amount_cents\nFAM-0001,15000\nFAM-0002,20000\n");
  put("csv", "extra_columns",
      "\xEF\xBB\xBF" "beneficiary_ref,household_size,amount_cents,contact\r\n"
      "FAM-1,3,15000,\"Via Roma 1, Venezia\"\r\n\r\nFAM-2,1,5000,\"say \"\"hi\"\"\"\r\n");
  put("csv", "statement",
      "redemption_id,amount_cents,created_at\nrd_1,250,2026-02-10T10:00:00Z\n");
  put("csv", "multiline", "a,b\n\"line one\nline two\",x\n\"open");
}

void export_seeds(const World& w) {
  for (auto format : {buoni::engine::ExportFormat::jsonl, buoni::engine::ExportFormat::csv}) {
    std::ostringstream out;
    auto s = buoni::engine::export_ledger(w.store(), 1, format, 0, out);
    buoni::fuzz::fuzz_check(s.ok(), "make_corpus: export failed");
    const std::string name(buoni::engine::export_format_name(format));
    put("export_verify", "world." + name, out.str());
    put("export_verify", "cut." + name, out.str().substr(0, out.str().size() / 2));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  g_root = argv[1];
  World& w = World::get();
  token_seeds(w);
  card_number_seeds(w);
  api_body_seeds(w);
  http_seeds(w);
  csv_seeds();
  export_seeds(w);
  std::printf("seed corpora written under %s\n", g_root.c_str());
  return 0;
}
