// Printed food-aid cards ("buoni spesa"): one card as PNG, SVG or PDF, and A4
// sheets of cards for printing and cutting. Drawn with cairo; the QR code is
// made by libqrencode. A pure layer: everything printed comes in a CardFace,
// nothing is read from the engine.
//
// Contract:
//  - A card is ISO/IEC 7810 ID-1 size, 85.60 x 53.98 mm. PNG is 300 dpi
//    (1011 x 638 px); SVG and PDF are in points
//    (1 mm = 72/25.4 pt). Text is Italian, in DejaVu Sans / DejaVu Sans Mono
//    (fonts-dejavu-core), UTF-8; a short English line for the QR instruction.
//  - The QR code carries qr_text and nothing else: EC level Q if that fits in
//    version 7, else M; modes chosen by libqrencode (a "BS1:" + Base45 token of
//    123 characters is alphanumeric, version 7-Q; 122 would be the most that
//    fits version 5, and only at level M). A 4-module quiet zone; modules of a
//    whole number of pixels at 300 dpi (6 px = 0.51 mm for version 7: 27 mm).
//  - The balance link is printed without its scheme; shortened with "…" when
//    it does not fit on its line. The SVG has a <title> with the card's text
//    (not the token) for screen readers; its drawing is outlines, not <text>.
//  - Files are written to "<path>.part" and renamed on success, so a file at
//    out_path is always complete. Errors: invalid_argument for a malformed
//    CardFace (empty card number or token, negative amount, expiry not
//    YYYY-MM-DD, token too long for a card-sized QR); io_error naming the path
//    when it cannot be created or written; internal when libqrencode or cairo
//    fail otherwise. No exception escapes.
//  - Thread safety: each call owns its cairo surfaces and QR codes; the free
//    functions are safe to call from any thread, concurrently. One
//    PdfSheetWriter must be used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/status.h"

namespace buoni::api {

struct CardFace {                 // everything printed on one card
  std::string programme_name;     // "Buoni spesa Venezia"
  std::string municipality;       // "Comune di Venezia"; may be empty
  std::int64_t amount_cents = 0;  // amount at issue, printed "€ 150,00"
  std::string expiry_date;        // "2026-12-31", printed "Valida fino al 31/12/2026"
  std::string card_number;        // "XXXX-XXXX-XXXX-XXXX-C"
  std::string qr_text;            // the token "BS1:..."; the only thing in the QR
  std::string balance_url;        // "https://host/c/..."; may be empty (line omitted)
};

enum class CardFormat { png, svg, pdf };

// The QR code a card would carry for qr_text: what the tests and the bench report.
struct CardQrLayout {
  int version = 0;       // QR version, 1..40
  char ec_level = 'Q';   // error correction level, 'Q' or 'M'
  int modules = 0;       // symbol width in modules, without the quiet zone
  int module_px = 0;     // pixels per module in the 300 dpi PNG
  double module_mm = 0;  // printed module size
  double qr_mm = 0;      // printed width including the 4-module quiet zones
  int png_x = 0;         // top-left corner of the quiet zone in the PNG, pixels
  int png_y = 0;
};
[[nodiscard]] StatusOr<CardQrLayout> card_qr_layout(std::string_view qr_text);

// "€ 1.234,56" (Italian grouping; '-' first when negative).
[[nodiscard]] std::string format_euro_amount(std::int64_t cents);

// One card, as the bytes of a PNG, SVG or PDF file (for an HTTP response).
[[nodiscard]] StatusOr<std::string> render_card_bytes(const CardFace& face, CardFormat format);
// One card, written to out_path.
[[nodiscard]] Status render_card(const CardFace& face, CardFormat format,
                                 const std::string& out_path);

// A4 PDF sheets for printing and cutting, streamed: cards are drawn as they are
// added, 8 per page (2 columns x 4 rows) with thin cut marks at each card's
// corners, and a page is written out when it is full, so memory does not grow
// with the number of cards. finish() completes the file; destroying a writer
// without a successful finish() removes the partial file. add() of a malformed
// face returns invalid_argument and draws nothing (the writer stays usable);
// after any other error, or after finish(), every later call fails. A
// moved-from writer may only be destroyed or assigned to.
class PdfSheetWriter {
 public:
  static constexpr int kColumns = 2;
  static constexpr int kRows = 4;
  static constexpr int kCardsPerPage = kColumns * kRows;

  // Creates "<out_pdf_path>.part" at once, so an unwritable path fails here.
  [[nodiscard]] static StatusOr<PdfSheetWriter> create(const std::string& out_pdf_path);

  PdfSheetWriter(PdfSheetWriter&&) noexcept;
  PdfSheetWriter& operator=(PdfSheetWriter&&) noexcept;
  PdfSheetWriter(const PdfSheetWriter&) = delete;
  PdfSheetWriter& operator=(const PdfSheetWriter&) = delete;
  ~PdfSheetWriter();

  [[nodiscard]] Status add(const CardFace& face);
  // At least one card must have been added (invalid_argument otherwise).
  [[nodiscard]] Status finish();
  [[nodiscard]] std::size_t cards() const;
  [[nodiscard]] std::size_t pages() const;  // pages started so far

 private:
  struct Impl;
  explicit PdfSheetWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// All of faces through a PdfSheetWriter; progress(done, total) after each card.
[[nodiscard]] Status render_card_sheets(
    const std::vector<CardFace>& faces, const std::string& out_pdf_path,
    const std::function<void(std::size_t done, std::size_t total)>& progress = {});

}  // namespace buoni::api
