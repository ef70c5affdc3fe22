// GET /c/{token}: the beneficiary's page, the link printed on the card.
// One small HTML document, Italian first and English below: balance, status,
// validity, the last transactions. No JavaScript, no external resources (the
// Content-Security-Policy forbids them), inline CSS with large text for old
// phones. Every dynamic string goes through markup_escape (api/render.h). Errors under /c/
// are HTML pages too (page_error_response), and never show the token.
#include <array>

#include "api/handler_internal.h"
#include "api/render.h"
#include "engine/calendar.h"

namespace buoni::api::detail {

namespace {

// 123456 cents as "1.234,56" (Italian) or "1,234.56" (English).
std::string amount_text(engine::Cents cents, char thousands, char decimal) {
  engine::Cents whole = (cents < 0 ? -cents : cents) / 100;
  engine::Cents rest = (cents < 0 ? -cents : cents) % 100;
  std::string digits = std::to_string(whole);
  std::string grouped;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped.push_back(thousands);
    grouped.push_back(digits[i]);
  }
  return grouped + decimal + (rest < 10 ? "0" : "") + std::to_string(rest);
}

// "€ 25,00" (Italian style: symbol, space, comma decimals).
std::string euro_it(engine::Cents cents) {
  return std::string(cents < 0 ? "−" : "") + "€ " + amount_text(cents, '.', ',');
}
std::string euro_en(engine::Cents cents) {
  return std::string(cents < 0 ? "−" : "") + "€" + amount_text(cents, ',', '.');
}

// "31/03/2026"
std::string day_it(engine::Day day) {
  std::string iso = engine::format_day(day);  // YYYY-MM-DD
  return iso.substr(8, 2) + "/" + iso.substr(5, 2) + "/" + iso.substr(0, 4);
}

struct Words {
  std::string_view key, it, en;
};

// Card status (engine::card_status_name) and transaction kinds
// (transaction_kind) in both languages.
constexpr std::array words{
    Words{"active", "attiva", "active"},
    Words{"blocked", "bloccata", "blocked"},
    Words{"revoked", "revocata o sostituita", "revoked or replaced"},
    Words{"expired", "scaduta", "expired"},
    Words{"redemption", "Spesa", "Purchase"},
    Words{"authorization", "Importo prenotato", "Amount reserved"},
    Words{"capture", "Spesa (importo prenotato)", "Purchase (reserved amount)"},
    Words{"void", "Prenotazione annullata", "Reservation cancelled"},
    Words{"authorization_expired", "Prenotazione scaduta", "Reservation expired"},
    Words{"release", "Resto della prenotazione", "Rest of a reservation"},
    Words{"refund", "Rimborso", "Refund"},
    Words{"issue", "Emissione", "Issued"},
    Words{"load", "Ricarica", "Top-up"},
    Words{"replacement", "Sostituzione carta", "Card replaced"},
    Words{"expiry", "Saldo scaduto", "Balance expired"},
};

std::string_view word(std::string_view key, bool italian) {
  for (const Words& w : words) {
    if (w.key == key) return italian ? w.it : w.en;
  }
  return key;
}

constexpr std::string_view style =
    "body{font-family:sans-serif;font-size:20px;line-height:1.45;margin:0 auto;"
    "padding:12px;max-width:34em;color:#111;background:#fff}"
    "h1{font-size:1.3em;margin:.4em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}"
    ".big{font-size:2.2em;font-weight:bold;margin:.1em 0}"
    "table{border-collapse:collapse;width:100%}"
    "td{padding:.35em .2em;border-bottom:1px solid #ccc;vertical-align:top}"
    ".n{text-align:right;white-space:nowrap}.muted{color:#555}"
    "hr{border:0;border-top:3px solid #888;margin:2em 0}";

std::string document(std::string_view title, std::string_view body) {
  std::string html = "<!DOCTYPE html>\n<html lang=\"it\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  html += "<meta name=\"robots\" content=\"noindex\">\n<title>";
  html += markup_escape(title);
  html += "</title>\n<style>";
  html += style;
  html += "</style>\n</head>\n<body>\n";
  html += body;
  html += "</body>\n</html>\n";
  return html;
}

Response html_response(const Request& req, int status, std::string body) {
  Response res{static_cast<http::status>(status), req.version()};
  res.set(http::field::content_type, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  // The URL holds the card's token: no referrer, nothing loaded from elsewhere.
  res.set("Referrer-Policy", "no-referrer");
  res.set("Content-Security-Policy",
          "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

std::string transactions_table(const std::vector<PublicTransaction>& list, bool italian) {
  if (list.empty()) {
    return italian ? "<p>Nessun movimento.</p>\n" : "<p>No transactions.</p>\n";
  }
  std::string html = "<table>\n";
  for (const PublicTransaction& t : list) {
    engine::Day day = engine::day_of(t.entry.time_ms);
    engine::Cents signed_cents = t.sign < 0 ? -t.entry.amount_cents : t.entry.amount_cents;
    std::string amount = italian ? euro_it(signed_cents) : euro_en(signed_cents);
    if (t.sign > 0) amount = "+" + amount;
    html +=
        "<tr><td>" + markup_escape(italian ? day_it(day) : engine::format_day(day)) + "</td><td>";
    html += markup_escape(word(t.kind, italian));
    if (!t.shop.empty()) html += "<br><span class=\"muted\">" + markup_escape(t.shop) + "</span>";
    html += "</td><td class=\"n\">" + markup_escape(amount) + "</td></tr>\n";
  }
  return html + "</table>\n";
}

// One language's half of the card page.
std::string card_section(const CardView& v, const std::vector<PublicTransaction>& list,
                         bool italian) {
  const engine::Card& c = v.card;
  const engine::Programme& p = v.programme;
  auto money = [&](engine::Cents cents) {
    return markup_escape(italian ? euro_it(cents) : euro_en(cents));
  };
  auto day = [&](engine::Day d) {
    return markup_escape(italian ? day_it(d) : engine::format_day(d));
  };
  std::string html = italian ? "<section lang=\"it\">\n" : "<section lang=\"en\">\n";
  html += "<h1>" + markup_escape(p.name) + "</h1>\n";
  html += "<p class=\"muted\">" + std::string(italian ? "Carta " : "Card ") +
          markup_escape(mask_card_number(c.id)) + "</p>\n";
  html += italian ? "<p>Saldo disponibile</p>\n" : "<p>Available balance</p>\n";
  html += "<p class=\"big\">" + money(c.available_cents) + "</p>\n";
  if (c.held_cents > 0) {
    html += std::string(italian ? "<p>Prenotato dai negozi: " : "<p>Reserved by shops: ") +
            money(c.held_cents) + "</p>\n";
  }
  html += std::string(italian ? "<p>Stato: <strong>" : "<p>Status: <strong>") +
          markup_escape(word(engine::card_status_name(c.status), italian)) + "</strong></p>\n";
  html += std::string(italian ? "<p>Valida dal " : "<p>Valid from ") + day(p.valid_from_day) +
          (italian ? " al " : " to ") + day(p.valid_until_day) + "</p>\n";
  html += italian ? "<h2>Ultimi movimenti</h2>\n" : "<h2>Last transactions</h2>\n";
  html += transactions_table(list, italian);
  return html + "</section>\n";
}

struct ErrorText {
  std::string_view code, it, en;
};

constexpr std::array error_texts{
    ErrorText{"invalid_card", "Il codice della carta non è valido. Controlli il link o il QR.",
              "The card's code is not valid. Check the link or the QR code."},
    ErrorText{"card_expired", "La carta è scaduta.", "The card has expired."},
    ErrorText{"unknown_card", "Carta non trovata.", "Card not found."},
    ErrorText{"not_found", "Pagina non trovata.", "Page not found."},
    ErrorText{"rate_limited", "Troppe richieste: riprovi tra poco.",
              "Too many requests: try again shortly."},
    ErrorText{"unavailable", "Servizio momentaneamente non disponibile: riprovi più tardi.",
              "The service is unavailable for a moment: try again later."},
};

}  // namespace

bool wants_html(const Request& req) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  return path == "/c" || path.starts_with("/c/");
}

Response page_error_response(const Request& req, int status, std::string_view code) {
  ErrorText text{code, "La richiesta non è valida.", "The request is not valid."};
  for (const ErrorText& t : error_texts) {
    if (t.code == code) text = t;
  }
  std::string body = "<section lang=\"it\">\n<h1>Buono spesa</h1>\n<p>" + markup_escape(text.it) +
                     "</p>\n</section>\n<hr>\n";
  body += "<section lang=\"en\">\n<h1>Food voucher</h1>\n<p>" + markup_escape(text.en) +
          "</p>\n<p class=\"muted\">(" + markup_escape(code) + ", " + std::to_string(status) +
          ")</p>\n</section>\n";
  return html_response(req, status, document("Buono spesa", body));
}

Response get_card_page(Call& call) {
  CardView v = load_card(call, resolve_token(call.ctx, call.params[0]));
  std::vector<PublicTransaction> list = public_transactions(call.ctx, v.card.id);
  std::string body = card_section(v, list, true) + "<hr>\n" + card_section(v, list, false);
  return html_response(call.req, 200, document("Buono spesa - " + v.programme.name, body));
}

}  // namespace buoni::api::detail
