#include "api/card_render.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <qrencode.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <numbers>
#include <utility>

#include "api/render.h"

namespace buoni::api {
namespace {

// ---- Geometry. A card is drawn in "dots" of 1/300 inch: the PNG is 300 dpi, so
// there a dot is a pixel and whole-dot QR modules are pixel-aligned. PDF and SVG
// scale dots to points.
constexpr double kPi = std::numbers::pi;
constexpr double kMmPerInch = 25.4;
constexpr double kDotsPerMm = 300.0 / kMmPerInch;
constexpr double kPtPerMm = 72.0 / kMmPerInch;
constexpr double kPtPerDot = 72.0 / 300.0;
constexpr double kCardWmm = 85.60;
constexpr double kCardHmm = 53.98;
constexpr double kCardW = kCardWmm * kDotsPerMm;  // 1011.0
constexpr double kCardH = kCardHmm * kDotsPerMm;  // 637.6
constexpr double kCornerRadius = 3.18 * kDotsPerMm;
constexpr double kMargin = 50;
// The QR box (quiet zone included) on the right, under the header.
constexpr int kQrBox = 318;  // 53 modules of 6 dots: version 7 with its quiet zone
constexpr int kQrX = 673;
constexpr int kQrY = 168;
constexpr int kQuietModules = 4;
constexpr int kMaxQVersion = 7;
constexpr int kMinModuleDots = 3;                // 0.25 mm: below this phones struggle
constexpr double kColumnW = kQrX - kMargin - 4;  // left column, clear of the quiet zone
constexpr double kFullW = kCardW - 2 * kMargin;

// A4 sheets: 2 x 4 cards with gaps for two cuts between neighbours.
constexpr double kA4Wmm = 210.0;
constexpr double kA4Hmm = 297.0;
constexpr double kGapXmm = 10.0;
constexpr double kGapYmm = 8.0;
constexpr double kSheetLeftMm = (kA4Wmm - 2 * kCardWmm - kGapXmm) / 2;
constexpr double kSheetTopMm = (kA4Hmm - 4 * kCardHmm - 3 * kGapYmm) / 2;
constexpr double kMarkOffsetMm = 1.0;  // cut marks start this far from the corner
constexpr double kMarkLengthMm = 2.5;

constexpr const char* kSans = "DejaVu Sans";
constexpr const char* kMono = "DejaVu Sans Mono";

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, Deleter<cairo_surface_destroy>>;
using ContextPtr = std::unique_ptr<cairo_t, Deleter<cairo_destroy>>;
using QrPtr = std::unique_ptr<QRcode, Deleter<QRcode_free>>;

// ---- Output sinks for cairo's stream callbacks.

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// Writes "<path>.part" and renames it to path on commit(); an uncommitted file
// is removed. Remembers the first errno, so errors name the path and the cause.
class FileSink {
 public:
  explicit FileSink(std::string path) : path_(std::move(path)), part_(path_ + ".part") {}
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  ~FileSink() { abandon(); }

  Status open() {
    file_ = std::fopen(part_.c_str(), "wb");
    if (file_ == nullptr) return io_error("cannot create " + path_ + ": " + std::strerror(errno));
    return Status();
  }
  static cairo_status_t write(void* closure, const unsigned char* data, unsigned int length) {
    auto* self = static_cast<FileSink*>(closure);
    if (self->errno_ != 0 || self->file_ == nullptr) return CAIRO_STATUS_WRITE_ERROR;
    if (std::fwrite(data, 1, length, self->file_) != length) {
      self->errno_ = errno != 0 ? errno : EIO;
      return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
  }
  Status write_all(const std::string& bytes) {
    return write(this, reinterpret_cast<const unsigned char*>(bytes.data()),
                 static_cast<unsigned int>(bytes.size())) == CAIRO_STATUS_SUCCESS
               ? Status()
               : write_error();
  }
  Status write_error() const {
    return io_error("cannot write " + path_ + ": " + std::strerror(errno_ != 0 ? errno_ : EIO));
  }
  Status commit() {
    if (errno_ == 0 && (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)) errno_ = errno;
    if (std::fclose(std::exchange(file_, nullptr)) != 0 && errno_ == 0) errno_ = errno;
    if (errno_ == 0 && std::rename(part_.c_str(), path_.c_str()) != 0) errno_ = errno;
    if (errno_ == 0) return Status();
    std::remove(part_.c_str());
    return write_error();
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  void abandon() {
    if (file_ == nullptr) return;
    std::fclose(std::exchange(file_, nullptr));
    std::remove(part_.c_str());
  }
  std::string path_;
  std::string part_;
  std::FILE* file_ = nullptr;
  int errno_ = 0;
};

Status cairo_failure(cairo_status_t status, const std::string& what) {
  std::string message = what + ": cairo: " + cairo_status_to_string(status);
  if (status == CAIRO_STATUS_WRITE_ERROR) return io_error(std::move(message));
  return internal_error(std::move(message));
}

// ---- Text shown on the card.

bool all_digits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return !s.empty();
}

// "2026-12-31" -> "31/12/2026"; empty when malformed.
std::string italian_date(std::string_view iso) {
  if (iso.size() != 10 || iso[4] != '-' || iso[7] != '-') return {};
  std::string_view y = iso.substr(0, 4), m = iso.substr(5, 2), d = iso.substr(8, 2);
  if (!all_digits(y) || !all_digits(m) || !all_digits(d)) return {};
  if (m < "01" || m > "12" || d < "01" || d > "31") return {};
  return std::string(d) + "/" + std::string(m) + "/" + std::string(y);
}

// "https://host/c/abc" -> "host/c/abc"
std::string without_scheme(const std::string& url) {
  auto at = url.find("://");
  return at == std::string::npos ? url : url.substr(at + 3);
}

struct QrMatrix {
  int version = 0;
  char ec_level = 'M';
  int width = 0;  // modules
  int module_dots = 0;
  std::vector<unsigned char> dark;  // width * width, row-major
};

// Level Q (25% of the symbol recoverable: cards get scuffed) while that keeps
// the symbol at version 7 or below, else level M.
StatusOr<QrMatrix> encode_qr(std::string_view text) {
  if (text.empty()) return invalid_argument("card QR text is empty");
  std::string copy(text);  // libqrencode wants a NUL-terminated string
  QrPtr code;
  char level = 'Q';
  for (QRecLevel ec : {QR_ECLEVEL_Q, QR_ECLEVEL_M}) {
    errno = 0;
    level = ec == QR_ECLEVEL_Q ? 'Q' : 'M';
    // Hint QR_MODE_8 + case-sensitive: libqrencode picks numeric, alphanumeric
    // or 8-bit segments itself; a Base45 token comes out alphanumeric.
    code.reset(QRcode_encodeString(copy.c_str(), 0, ec, QR_MODE_8, 1));
    if (code != nullptr && code->version <= kMaxQVersion) break;
  }
  if (code == nullptr) {
    if (errno == ERANGE) return invalid_argument("card QR text is too long for a QR code");
    return internal_error(std::string("QR encoding failed: ") + std::strerror(errno));
  }
  QrMatrix qr;
  qr.version = code->version;
  qr.ec_level = level;
  qr.width = code->width;
  qr.module_dots = kQrBox / (qr.width + 2 * kQuietModules);
  if (qr.module_dots < kMinModuleDots) {
    return invalid_argument("card QR text is too long: QR version " + std::to_string(qr.version) +
                            " does not fit on a card");
  }
  qr.dark.resize(static_cast<std::size_t>(qr.width) * qr.width);
  for (std::size_t i = 0; i < qr.dark.size(); ++i) qr.dark[i] = code->data[i] & 1;
  return qr;
}

// A CardFace checked and formatted, ready to draw.
struct PreparedCard {
  const CardFace* face = nullptr;
  std::string amount;
  std::string expiry;
  std::string balance;  // "Saldo: host/c/..." or empty
  QrMatrix qr;
};

StatusOr<PreparedCard> prepare(const CardFace& face) {
  if (face.card_number.empty()) return invalid_argument("card number is empty");
  if (face.amount_cents < 0) return invalid_argument("card amount is negative");
  PreparedCard card;
  card.face = &face;
  card.expiry = italian_date(face.expiry_date);
  if (card.expiry.empty()) {
    return invalid_argument("card expiry is not YYYY-MM-DD: '" + face.expiry_date + "'");
  }
  card.expiry = "Valida fino al " + card.expiry;
  card.amount = format_euro_amount(face.amount_cents);
  if (!face.balance_url.empty()) card.balance = "Saldo: " + without_scheme(face.balance_url);
  BUONI_ASSIGN_OR_RETURN(card.qr, encode_qr(face.qr_text));
  return card;
}

// ---- Drawing, in dots.

struct Font {
  const char* family;
  cairo_font_weight_t weight;
  cairo_font_slant_t slant;
  double size;  // dots
  double grey;  // 0 = black
};
constexpr Font kProgrammeFont{kSans, CAIRO_FONT_WEIGHT_BOLD, CAIRO_FONT_SLANT_NORMAL, 50, 0};
constexpr Font kProgrammeSmallFont{kSans, CAIRO_FONT_WEIGHT_BOLD, CAIRO_FONT_SLANT_NORMAL, 38, 0};
constexpr Font kMunicipalityFont{kSans, CAIRO_FONT_WEIGHT_NORMAL, CAIRO_FONT_SLANT_NORMAL, 34, 0.3};
constexpr Font kMunicipalitySmallFont{kSans, CAIRO_FONT_WEIGHT_NORMAL, CAIRO_FONT_SLANT_NORMAL, 28,
                                      0.3};
constexpr Font kAmountFont{kSans, CAIRO_FONT_WEIGHT_BOLD, CAIRO_FONT_SLANT_NORMAL, 112, 0};
constexpr Font kExpiryFont{kSans, CAIRO_FONT_WEIGHT_NORMAL, CAIRO_FONT_SLANT_NORMAL, 36, 0};
constexpr Font kLabelFont{kSans, CAIRO_FONT_WEIGHT_NORMAL, CAIRO_FONT_SLANT_NORMAL, 25, 0.35};
constexpr Font kNumberFont{kMono, CAIRO_FONT_WEIGHT_BOLD, CAIRO_FONT_SLANT_NORMAL, 48, 0};
constexpr Font kInstructionFont{kSans, CAIRO_FONT_WEIGHT_BOLD, CAIRO_FONT_SLANT_NORMAL, 31, 0};
constexpr Font kEnglishFont{kSans, CAIRO_FONT_WEIGHT_NORMAL, CAIRO_FONT_SLANT_ITALIC, 26, 0.3};
constexpr Font kBalanceFont{kSans, CAIRO_FONT_WEIGHT_NORMAL, CAIRO_FONT_SLANT_NORMAL, 27, 0};
constexpr double kMaxShrink = 1.25;  // a programme name shrinks by 1/1.25 before wrapping
constexpr double kAccent[3] = {0.10, 0.23, 0.42};  // dark blue: programme name and rule

void set_font(cairo_t* cr, const Font& font, double size) {
  cairo_select_font_face(cr, font.family, font.slant, font.weight);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& text) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr, text.c_str(), &extents);
  return extents.x_advance;
}

// Draws text with its baseline at y, shrinking the font until it fits max_width.
void draw_text(cairo_t* cr, const Font& font, double x, double y, double max_width,
               const std::string& text) {
  if (text.empty()) return;
  set_font(cr, font, font.size);
  double width = text_width(cr, text);
  if (width > max_width) set_font(cr, font, font.size * max_width / width);
  cairo_move_to(cr, x, y);
  cairo_show_text(cr, text.c_str());
}

// text, cut at a UTF-8 character boundary and ended with "…" so it fits.
std::string fit_with_ellipsis(cairo_t* cr, const Font& font, std::string text, double max_width) {
  set_font(cr, font, font.size);
  if (text_width(cr, text) <= max_width) return text;
  while (!text.empty()) {
    do {
      text.pop_back();
    } while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80);
    if (!text.empty()) text.pop_back();  // the lead byte of the character just cut
    std::string candidate = text + "\u2026";
    if (text_width(cr, candidate) <= max_width) return candidate;
  }
  return "\u2026";
}

// Top-left corner of the quiet zone, in dots: the QR is centred in its box.
int qr_origin(const QrMatrix& qr, int box_origin) {
  return box_origin + (kQrBox - (qr.width + 2 * kQuietModules) * qr.module_dots) / 2;
}

void draw_qr(cairo_t* cr, const QrMatrix& qr) {
  const int m = qr.module_dots;
  const int x0 = qr_origin(qr, kQrX) + kQuietModules * m;
  const int y0 = qr_origin(qr, kQrY) + kQuietModules * m;
  // One path of horizontal runs, filled once: no seams between modules.
  for (int y = 0; y < qr.width; ++y) {
    const unsigned char* row = &qr.dark[static_cast<std::size_t>(y) * qr.width];
    for (int x = 0; x < qr.width;) {
      if (row[x] == 0) {
        ++x;
        continue;
      }
      int run = 1;
      while (x + run < qr.width && row[x + run] != 0) ++run;
      cairo_rectangle(cr, x0 + x * m, y0 + y * m, run * m, m);
      x += run;
    }
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_fill(cr);
}

void card_outline_path(cairo_t* cr, double inset) {
  const double r = kCornerRadius - inset, w = kCardW - inset, h = kCardH - inset;
  cairo_new_sub_path(cr);
  cairo_arc(cr, w - r, inset + r, r, -kPi / 2, 0);
  cairo_arc(cr, w - r, h - r, r, 0, kPi / 2);
  cairo_arc(cr, inset + r, h - r, r, kPi / 2, kPi);
  cairo_arc(cr, inset + r, inset + r, r, kPi, 3 * kPi / 2);
  cairo_close_path(cr);
}

// Splits text at the last space that leaves a first line fitting max_width.
std::pair<std::string, std::string> split_line(cairo_t* cr, const Font& font,
                                               const std::string& text, double max_width) {
  set_font(cr, font, font.size);
  std::size_t best = std::string::npos;
  for (std::size_t at = text.find(' '); at != std::string::npos; at = text.find(' ', at + 1)) {
    if (text_width(cr, text.substr(0, at)) > max_width) break;
    best = at;
  }
  if (best == std::string::npos) return {text, {}};  // one long word: shrunk to fit
  return {text.substr(0, best), text.substr(best + 1)};
}

// Programme name, rule and municipality. A name too long for one line at
// nearly full size goes on two smaller lines, ending in "…" if still too long.
void draw_header(cairo_t* cr, const CardFace& face) {
  cairo_set_source_rgb(cr, kAccent[0], kAccent[1], kAccent[2]);
  set_font(cr, kProgrammeFont, kProgrammeFont.size);
  const bool one_line = text_width(cr, face.programme_name) <= kFullW * kMaxShrink;
  if (one_line) {
    draw_text(cr, kProgrammeFont, kMargin, 92, kFullW, face.programme_name);
  } else {
    auto [first, rest] = split_line(cr, kProgrammeSmallFont, face.programme_name, kFullW);
    draw_text(cr, kProgrammeSmallFont, kMargin, 60, kFullW, first);
    draw_text(cr, kProgrammeSmallFont, kMargin, 100, kFullW,
              fit_with_ellipsis(cr, kProgrammeSmallFont, rest, kFullW));
  }
  cairo_rectangle(cr, kMargin, 152, kFullW, 3);
  cairo_fill(cr);
  const Font& municipality = one_line ? kMunicipalityFont : kMunicipalitySmallFont;
  cairo_set_source_rgb(cr, municipality.grey, municipality.grey, municipality.grey);
  draw_text(cr, municipality, kMargin, one_line ? 135 : 138, kFullW, face.municipality);
}

void draw_text_block(cairo_t* cr, const PreparedCard& card) {
  const CardFace& face = *card.face;
  draw_header(cr, face);

  cairo_set_source_rgb(cr, 0, 0, 0);
  draw_text(cr, kAmountFont, kMargin, 282, kColumnW, card.amount);
  draw_text(cr, kExpiryFont, kMargin, 336, kColumnW, card.expiry);
  cairo_set_source_rgb(cr, kLabelFont.grey, kLabelFont.grey, kLabelFont.grey);
  draw_text(cr, kLabelFont, kMargin, 400, kColumnW, "Numero carta");
  cairo_set_source_rgb(cr, 0, 0, 0);
  draw_text(cr, kNumberFont, kMargin, 450, kColumnW, face.card_number);

  draw_text(cr, kInstructionFont, kMargin, 530, kFullW, "Mostra questo codice in negozio");
  cairo_set_source_rgb(cr, kEnglishFont.grey, kEnglishFont.grey, kEnglishFont.grey);
  draw_text(cr, kEnglishFont, kMargin, 565, kFullW, "Show this code at the shop");
  cairo_set_source_rgb(cr, 0, 0, 0);
  draw_text(cr, kBalanceFont, kMargin, 604, kFullW,
            fit_with_ellipsis(cr, kBalanceFont, card.balance, kFullW));
}

// One card with its top-left corner at the origin of cr, in dots. outline: a
// thin grey border to cut along (single cards; sheets have cut marks instead).
void draw_card(cairo_t* cr, const PreparedCard& card, bool outline) {
  cairo_save(cr);
  card_outline_path(cr, 0);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_fill(cr);
  if (outline) {
    card_outline_path(cr, 1);
    cairo_set_line_width(cr, 2);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_stroke(cr);
  }
  draw_text_block(cr, card);
  draw_qr(cr, card.qr);
  cairo_restore(cr);
}

// cairo draws text as glyph outlines; a <title> gives the SVG a text alternative.
void insert_svg_title(std::string& svg, const PreparedCard& card) {
  const auto open = svg.find("<svg");
  const auto end = open == std::string::npos ? open : svg.find('>', open);
  if (end == std::string::npos) return;
  const CardFace& face = *card.face;
  std::string title = face.programme_name + " \u2014 " + card.amount + " \u2014 " + card.expiry +
                      " \u2014 Numero carta " + face.card_number;
  svg.insert(end + 1, "\n<title>" + markup_escape(title) + "</title>");
}

// Draws card on a fresh surface (image at 300 dpi, or vector in points).
Status draw_on(cairo_surface_t* surface, const PreparedCard& card, bool vector) {
  ContextPtr cr(cairo_create(surface));
  if (vector) {
    cairo_scale(cr.get(), kPtPerDot, kPtPerDot);
  } else {
    cairo_set_source_rgb(cr.get(), 1, 1, 1);
    cairo_paint(cr.get());
  }
  draw_card(cr.get(), card, /*outline=*/true);
  if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) {
    return cairo_failure(cairo_status(cr.get()), "drawing card");
  }
  return Status();
}

Status render_to_string(const PreparedCard& card, CardFormat format, std::string& out) {
  const double w_pt = kCardWmm * kPtPerMm, h_pt = kCardHmm * kPtPerMm;
  SurfacePtr surface;
  switch (format) {
    case CardFormat::png:
      surface.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(kCardW + 0.5),
                                               static_cast<int>(kCardH + 0.5)));
      break;
    case CardFormat::svg:
      surface.reset(cairo_svg_surface_create_for_stream(append_to_string, &out, w_pt, h_pt));
      cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PT);
      break;
    case CardFormat::pdf:
      surface.reset(cairo_pdf_surface_create_for_stream(append_to_string, &out, w_pt, h_pt));
      cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_TITLE,
                                     card.face->programme_name.c_str());
      break;
  }
  BUONI_RETURN_IF_ERROR(draw_on(surface.get(), card, format != CardFormat::png));
  if (format == CardFormat::png) {
    cairo_status_t status =
        cairo_surface_write_to_png_stream(surface.get(), append_to_string, &out);
    if (status != CAIRO_STATUS_SUCCESS) return cairo_failure(status, "encoding PNG");
  }
  cairo_surface_finish(surface.get());
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    return cairo_failure(cairo_surface_status(surface.get()), "finishing card");
  }
  if (format == CardFormat::svg) insert_svg_title(out, card);
  return Status();
}

}  // namespace

std::string format_euro_amount(std::int64_t cents) {
  // Magnitude as unsigned, so INT64_MIN does not overflow.
  const std::uint64_t magnitude =
      cents < 0 ? 0 - static_cast<std::uint64_t>(cents) : static_cast<std::uint64_t>(cents);
  std::string units = std::to_string(magnitude / 100);
  std::string grouped;
  for (std::size_t i = 0; i < units.size(); ++i) {
    if (i > 0 && (units.size() - i) % 3 == 0) grouped += '.';
    grouped += units[i];
  }
  const unsigned fraction = static_cast<unsigned>(magnitude % 100);
  std::string out = cents < 0 ? "-\u20AC " : "\u20AC ";
  out += grouped + "," + static_cast<char>('0' + fraction / 10) +
         static_cast<char>('0' + fraction % 10);
  return out;
}

StatusOr<CardQrLayout> card_qr_layout(std::string_view qr_text) {
  BUONI_ASSIGN_OR_RETURN(QrMatrix qr, encode_qr(qr_text));
  CardQrLayout layout;
  layout.version = qr.version;
  layout.ec_level = qr.ec_level;
  layout.modules = qr.width;
  layout.module_px = qr.module_dots;
  layout.module_mm = qr.module_dots / kDotsPerMm;
  layout.qr_mm = (qr.width + 2 * kQuietModules) * layout.module_mm;
  layout.png_x = qr_origin(qr, kQrX);
  layout.png_y = qr_origin(qr, kQrY);
  return layout;
}

StatusOr<std::string> render_card_bytes(const CardFace& face, CardFormat format) {
  BUONI_ASSIGN_OR_RETURN(PreparedCard card, prepare(face));
  std::string out;
  BUONI_RETURN_IF_ERROR(render_to_string(card, format, out));
  return out;
}

Status render_card(const CardFace& face, CardFormat format, const std::string& out_path) {
  BUONI_ASSIGN_OR_RETURN(std::string bytes, render_card_bytes(face, format));
  FileSink sink(out_path);
  BUONI_RETURN_IF_ERROR(sink.open());
  BUONI_RETURN_IF_ERROR(sink.write_all(bytes));
  return sink.commit();
}

// ---- Sheets.

struct PdfSheetWriter::Impl {
  explicit Impl(const std::string& path) : sink(path) {}
  FileSink sink;
  SurfacePtr surface;
  ContextPtr cr;
  std::size_t cards = 0;
  std::size_t pages = 0;
  Status failed;  // the first error; sticky

  Status check(const char* what) {
    cairo_status_t status = cairo_status(cr.get());
    if (status == CAIRO_STATUS_SUCCESS) status = cairo_surface_status(surface.get());
    if (status == CAIRO_STATUS_SUCCESS) return Status();
    failed = status == CAIRO_STATUS_WRITE_ERROR ? sink.write_error()
                                                : cairo_failure(status, what + sink.path());
    return failed;
  }
  void draw_page_footer();
  void draw_cut_marks(double x_pt, double y_pt);
};

void PdfSheetWriter::Impl::draw_page_footer() {
  cairo_t* c = cr.get();
  cairo_set_source_rgb(c, 0.4, 0.4, 0.4);
  cairo_select_font_face(c, kSans, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(c, 8);
  const std::string text =
      "Foglio " + std::to_string(pages) + " \u2014 ritagliare lungo i segni di taglio";
  cairo_move_to(c, kSheetLeftMm * kPtPerMm, (kA4Hmm - 12) * kPtPerMm);
  cairo_show_text(c, text.c_str());
}

void PdfSheetWriter::Impl::draw_cut_marks(double x_pt, double y_pt) {
  cairo_t* c = cr.get();
  const double w = kCardWmm * kPtPerMm, h = kCardHmm * kPtPerMm;
  const double near = kMarkOffsetMm * kPtPerMm, far = (kMarkOffsetMm + kMarkLengthMm) * kPtPerMm;
  for (double cx : {x_pt, x_pt + w}) {
    for (double cy : {y_pt, y_pt + h}) {
      const double sx = cx == x_pt ? -1 : 1, sy = cy == y_pt ? -1 : 1;  // outward
      cairo_move_to(c, cx + sx * near, cy);
      cairo_line_to(c, cx + sx * far, cy);
      cairo_move_to(c, cx, cy + sy * near);
      cairo_line_to(c, cx, cy + sy * far);
    }
  }
  cairo_set_source_rgb(c, 0, 0, 0);
  cairo_set_line_width(c, 0.25);
  cairo_stroke(c);
}

PdfSheetWriter::PdfSheetWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PdfSheetWriter::PdfSheetWriter(PdfSheetWriter&&) noexcept = default;
PdfSheetWriter& PdfSheetWriter::operator=(PdfSheetWriter&&) noexcept = default;
PdfSheetWriter::~PdfSheetWriter() = default;  // the sink removes an uncommitted file

StatusOr<PdfSheetWriter> PdfSheetWriter::create(const std::string& out_pdf_path) {
  auto impl = std::make_unique<Impl>(out_pdf_path);
  BUONI_RETURN_IF_ERROR(impl->sink.open());
  impl->surface.reset(cairo_pdf_surface_create_for_stream(FileSink::write, &impl->sink,
                                                          kA4Wmm * kPtPerMm, kA4Hmm * kPtPerMm));
  cairo_pdf_surface_set_metadata(impl->surface.get(), CAIRO_PDF_METADATA_TITLE, "Buoni spesa");
  impl->cr.reset(cairo_create(impl->surface.get()));
  BUONI_RETURN_IF_ERROR(impl->check("creating "));
  return PdfSheetWriter(std::move(impl));
}

Status PdfSheetWriter::add(const CardFace& face) {
  if (!impl_->failed.ok()) return impl_->failed;
  BUONI_ASSIGN_OR_RETURN(PreparedCard card, prepare(face));
  cairo_t* c = impl_->cr.get();
  const std::size_t slot = impl_->cards % kCardsPerPage;
  if (slot == 0) {
    if (impl_->cards > 0) cairo_show_page(c);  // the full page goes out to the file
    ++impl_->pages;
    impl_->draw_page_footer();
  }
  const double x_pt = (kSheetLeftMm + (slot % kColumns) * (kCardWmm + kGapXmm)) * kPtPerMm;
  const double y_pt = (kSheetTopMm + (slot / kColumns) * (kCardHmm + kGapYmm)) * kPtPerMm;
  impl_->draw_cut_marks(x_pt, y_pt);
  cairo_save(c);
  cairo_translate(c, x_pt, y_pt);
  cairo_scale(c, kPtPerDot, kPtPerDot);
  draw_card(c, card, /*outline=*/false);
  cairo_restore(c);
  ++impl_->cards;
  return impl_->check("drawing a card into ");
}

Status PdfSheetWriter::finish() {
  if (!impl_->failed.ok()) return impl_->failed;
  if (impl_->cards == 0) {
    impl_->failed = invalid_argument("no cards for " + impl_->sink.path());
    return impl_->failed;
  }
  impl_->cr.reset();
  cairo_surface_finish(impl_->surface.get());
  const cairo_status_t status = cairo_surface_status(impl_->surface.get());
  if (status != CAIRO_STATUS_SUCCESS) {
    impl_->failed = status == CAIRO_STATUS_WRITE_ERROR
                        ? impl_->sink.write_error()
                        : cairo_failure(status, "finishing " + impl_->sink.path());
    return impl_->failed;
  }
  Status committed = impl_->sink.commit();
  impl_->failed = committed.ok() ? invalid_argument("sheet writer already finished") : committed;
  return committed;
}

std::size_t PdfSheetWriter::cards() const {
  return impl_->cards;
}
std::size_t PdfSheetWriter::pages() const {
  return impl_->pages;
}

Status render_card_sheets(const std::vector<CardFace>& faces, const std::string& out_pdf_path,
                          const std::function<void(std::size_t, std::size_t)>& progress) {
  if (faces.empty()) return invalid_argument("no cards for " + out_pdf_path);
  BUONI_ASSIGN_OR_RETURN(PdfSheetWriter writer, PdfSheetWriter::create(out_pdf_path));
  for (std::size_t i = 0; i < faces.size(); ++i) {
    BUONI_RETURN_IF_ERROR(writer.add(faces[i]));
    if (progress) progress(i + 1, faces.size());
  }
  return writer.finish();
}

}  // namespace buoni::api
