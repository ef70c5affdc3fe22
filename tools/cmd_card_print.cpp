// buoni card render | card verify
#include <fstream>
#include <iostream>
#include <sstream>

#include "crypto/token.h"
#include "engine/calendar.h"
#include "engine/queries.h"
#include "tools/card_face.h"
#include "tools/commands.h"

namespace buoni::tools {

namespace {

api::CardFormat parse_format(const std::string& text) {
  if (text == "png") return api::CardFormat::png;
  if (text == "svg") return api::CardFormat::svg;
  if (text == "pdf") return api::CardFormat::pdf;
  throw UsageError{"--format takes png, svg or pdf, not '" + text + "'"};
}

struct RenderArgs {
  std::string card, format = "pdf", out;
};

int render(const Common& common, const RenderArgs& a) {
  api::CardFormat format = parse_format(a.format);
  CardId id = card_arg(common, a.card);
  auto keys = load_signing_keys(common.dir());
  if (!keys.ok()) return report_status(common, keys.status());
  auto reader = Reader::open(common.dir());
  if (!reader.ok()) return report_status(common, reader.status());
  auto card = engine::find_card((*reader)->store(), id);
  if (!card.ok()) return report_status(common, card.status());
  if (!card->has_value()) return print_decline(common, engine::Code::unknown_card);
  auto programme = engine::find_programme((*reader)->store(), (*card)->programme);
  if (!programme.ok()) return report_status(common, programme.status());
  if (!programme->has_value()) return report_status(common, corruption("card without programme"));
  api::CardFace face = card_face(**card, **programme, keys->back(), public_url());
  Status s = api::render_card(face, format, a.out);
  if (!s.ok()) return report_status(common, s);
  print(common, {{"card", face.card_number}, {"out", a.out}, {"format", a.format}},
        "wrote " + a.out + " (card " + face.card_number + ")");
  return exit_ok;
}

struct VerifyArgs {
  std::string token, public_keys;
};

int verify(const Common& common, const VerifyArgs& a) {
  auto keys = parse_public_keys(read_input_file("--public-keys", a.public_keys, kPublicKeysBytesMax));
  if (!keys.ok()) throw UsageError{"--public-keys: " + keys.status().message()};
  TokenResult r = verify_token(a.token, *keys, engine::day_of(engine::SystemClock().now_ms()));
  if (!r.ok()) {
    std::string name(token_error_name(r.error));
    if (common.json) {
      print(common, {{"valid", false}, {"error", name}}, "");
    }
    std::cerr << "buoni: token not valid: " << name << ": " << token_error_message(r.error) << "\n";
    return exit_declined;
  }
  const CardToken& t = *r.token;
  print(common,
        {{"valid", true},
         {"card_number", format_card_number(t.card)},
         {"key_id", t.key_id},
         {"expires_at", engine::format_day(t.expiry_day)}},
        "valid: card " + format_card_number(t.card) + ", signed by key " +
            std::to_string(t.key_id) + ", valid until " + engine::format_day(t.expiry_day));
  return exit_ok;
}

}  // namespace

void register_card_print(CLI::App& card, Common& common, int& exit_code) {
  auto r = std::make_shared<RenderArgs>();
  auto* render_cmd = card.add_subcommand("render", "draw a printable card (QR, number, amount)");
  render_cmd->add_option("--card", r->card, "card number, id or token")->required();
  render_cmd->add_option("--format", r->format, "png, svg or pdf")->capture_default_str();
  render_cmd->add_option("--out", r->out, "output file")->required();
  render_cmd->callback([r, &common, &exit_code] { exit_code = render(common, *r); });

  auto v = std::make_shared<VerifyArgs>();
  auto* verify_cmd = card.add_subcommand("verify",
                                         "check a token offline with the public keys "
                                         "(no data directory needed)");
  verify_cmd->add_option("token", v->token, "the token (BS1:... or its link form)")->required();
  verify_cmd->add_option("--public-keys", v->public_keys, "file printed by `buoni key show`")
      ->required();
  verify_cmd->callback([v, &common, &exit_code] { exit_code = verify(common, *v); });
}

}  // namespace buoni::tools
