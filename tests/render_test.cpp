// Tests for printed cards: every QR code drawn is read back by a real QR
// reader (zbarimg), PDFs are rasterised by poppler (pdftoppm) first, and the
// PNG's pixels are checked for a clean, pixel-aligned QR with a white quiet zone.
#include <cairo.h>
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/card_render.h"
#include "crypto/status.h"

// fontconfig (under cairo's text) keeps its configuration and caches for the
// life of the process; LeakSanitizer (BUONI_SANITIZE builds) would report
// them at exit. Harmless in other builds: nothing calls it.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libfontconfig.so\n";
}

namespace buoni::api {
namespace {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/buoni_render_XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

struct Run {
  int exit_code = -1;
  std::string out;
};

// Runs a shell command, returning its exit code and standard output.
Run run(const std::string& command) {
  Run result;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

struct Zbar {
  int exit_code = -1;
  std::vector<std::string> symbols;  // one per line, in zbarimg's order
  std::string errors;
};

// zbarimg on an image, QR codes only; its stderr is kept apart (ImageMagick may
// print D-Bus noise there).
Zbar zbar(const std::string& image) {
  const std::string err = image + ".stderr";
  Run r = run("zbarimg --raw -q -Sdisable -Sqrcode.enable '" + image + "' 2>'" + err + "'");
  Zbar z{r.exit_code, lines_of(r.out), read_file(err)};
  std::remove(err.c_str());
  return z;
}

// Every QR code zbarimg finds in an image; it must find at least one.
std::vector<std::string> decode_qr(const std::string& image) {
  Zbar z = zbar(image);
  INFO("zbarimg exit code " << z.exit_code << " for " << image << ": " << z.errors);
  CHECK(z.exit_code == 0);
  return z.symbols;
}

// A realistic token: "BS1:" + 119 Base45 symbols (RFC 9285 alphabet), from a fixed
// seed, with a space, ':' and '%' forced in, as real tokens have.
std::string make_token(unsigned seed) {
  static const std::string kBase45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, kBase45.size() - 1);
  std::string body;
  for (int i = 0; i < 119; ++i) body += kBase45[pick(rng)];
  body[7] = ' ';
  body[40] = ':';
  body[77] = '%';
  return "BS1:" + body;
}

CardFace make_face(unsigned seed) {
  CardFace face;
  face.programme_name = "Buoni spesa Venezia";
  face.municipality = "Comune di Venezia \u2014 Politiche sociali";
  face.amount_cents = 15000 + 500 * static_cast<std::int64_t>(seed % 7);
  face.expiry_date = "2026-12-31";
  const std::string suffix = std::to_string(1000 + seed % 9000);
  face.card_number = "7KQ4-M2XD-9HBT-" + suffix + "-R";
  face.qr_text = make_token(seed);
  face.balance_url = "https://buoni.comune.venezia.example/c/" + std::string(40, 'q') + suffix;
  return face;
}

// Width and height from a PNG's IHDR chunk.
std::pair<int, int> png_size(const std::string& png) {
  REQUIRE(png.size() > 24);
  REQUIRE(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  auto be32 = [&](std::size_t at) {
    return (static_cast<unsigned char>(png[at]) << 24) |
           (static_cast<unsigned char>(png[at + 1]) << 16) |
           (static_cast<unsigned char>(png[at + 2]) << 8) | static_cast<unsigned char>(png[at + 3]);
  };
  return {static_cast<int>(be32(16)), static_cast<int>(be32(20))};
}

// "Pages: 3" etc. from pdfinfo.
std::string pdfinfo_field(const std::string& pdf, const std::string& field) {
  Run r = run("pdfinfo '" + pdf + "'");
  REQUIRE(r.exit_code == 0);
  for (const std::string& line : lines_of(r.out)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(' '));
      return value;
    }
  }
  return {};
}

// Rasterises a PDF with pdftoppm; returns the page images in page order.
std::vector<std::string> rasterise(const std::string& pdf, const TempDir& dir, int dpi) {
  const std::string prefix = dir.file("page");
  Run r = run("pdftoppm -r " + std::to_string(dpi) + " -png '" + pdf + "' '" + prefix + "'");
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> pages;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("page-", 0) == 0) pages.push_back(entry.path().string());
  }
  std::sort(pages.begin(), pages.end());
  return pages;
}

bool no_part_files(const TempDir& dir) {
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (entry.path().extension() == ".part") return false;
  }
  return true;
}

TEST_CASE("amounts print in Italian format") {
  CHECK(format_euro_amount(15000) == "\u20AC 150,00");
  CHECK(format_euro_amount(5) == "\u20AC 0,05");
  CHECK(format_euro_amount(100000) == "\u20AC 1.000,00");
  CHECK(format_euro_amount(99999) == "\u20AC 999,99");
  CHECK(format_euro_amount(123456789) == "\u20AC 1.234.567,89");
  CHECK(format_euro_amount(-250) == "-\u20AC 2,50");
  CHECK(format_euro_amount(INT64_MIN) == "-\u20AC 92.233.720.368.547.758,08");
}

TEST_CASE("a 123-char card token is a QR code of version 7 at level Q, 6-pixel modules") {
  const std::string token = make_token(1);
  REQUIRE(token.size() == 123);
  StatusOr<CardQrLayout> layout = card_qr_layout(token);
  REQUIRE(layout.ok());
  MESSAGE("QR for a " << token.size() << "-char token: version " << layout->version << ", EC "
                      << std::string(1, layout->ec_level) << ", " << layout->modules << " modules, "
                      << layout->module_px << " px/module at 300 dpi = " << layout->module_mm
                      << " mm, " << layout->qr_mm << " mm with quiet zone");
  CHECK(layout->version == 7);  // 122 alphanumeric chars fit version 5 at level M, not 123
  CHECK(layout->ec_level == 'Q');
  CHECK(layout->modules == 17 + 4 * layout->version);
  CHECK(layout->module_px == 6);
  CHECK(layout->qr_mm >= 20.0);
  // A longer text falls back to level M rather than a version above 7.
  StatusOr<CardQrLayout> longer = card_qr_layout(token + std::string(40, 'A'));
  REQUIRE(longer.ok());
  CHECK(longer->ec_level == 'M');
  CHECK(longer->version == 7);
}

TEST_CASE("PNG card: 300 dpi ID-1 size, and zbarimg reads the token back exactly") {
  TempDir dir;
  const CardFace face = make_face(1);
  const std::string path = dir.file("card.png");
  Status s = render_card(face, CardFormat::png, path);
  REQUIRE_MESSAGE(s.ok(), s.to_string());
  const std::string png = read_file(path);
  CHECK(png_size(png) == std::pair<int, int>{1011, 638});
  const std::vector<std::string> decoded = decode_qr(path);
  REQUIRE(decoded.size() == 1);
  CHECK(decoded[0] == face.qr_text);
  CHECK(no_part_files(dir));
  if (const char* keep = std::getenv("BUONI_KEEP_CARD"))
    fs::copy_file(path, keep, fs::copy_options::overwrite_existing);
}

TEST_CASE("PNG card: the QR is pixel-aligned, pure black and white, in a white quiet zone") {
  const CardFace face = make_face(2);
  StatusOr<std::string> png = render_card_bytes(face, CardFormat::png);
  REQUIRE(png.ok());
  StatusOr<CardQrLayout> layout = card_qr_layout(face.qr_text);
  REQUIRE(layout.ok());
  struct Reader {
    const std::string* data;
    std::size_t at = 0;
  } reader{&png.value()};
  cairo_surface_t* image = cairo_image_surface_create_from_png_stream(
      [](void* closure, unsigned char* out, unsigned int length) {
        auto* r = static_cast<Reader*>(closure);
        if (r->at + length > r->data->size()) return CAIRO_STATUS_READ_ERROR;
        std::copy_n(r->data->data() + r->at, length, out);
        r->at += length;
        return CAIRO_STATUS_SUCCESS;
      },
      &reader);
  REQUIRE(cairo_surface_status(image) == CAIRO_STATUS_SUCCESS);
  const unsigned char* pixels = cairo_image_surface_get_data(image);
  const int stride = cairo_image_surface_get_stride(image);
  auto rgb = [&](int x, int y) {
    return *reinterpret_cast<const std::uint32_t*>(pixels + y * stride + x * 4) & 0xFFFFFF;
  };
  const int m = layout->module_px, quiet = 4, n = layout->modules;
  const int side = (n + 2 * quiet) * m;
  REQUIRE(layout->png_x + side <= cairo_image_surface_get_width(image));
  REQUIRE(layout->png_y + side <= cairo_image_surface_get_height(image));
  int impure = 0, not_uniform = 0, dirty_quiet = 0, dark = 0;
  for (int row = 0; row < n + 2 * quiet; ++row) {
    for (int col = 0; col < n + 2 * quiet; ++col) {
      const int x0 = layout->png_x + col * m, y0 = layout->png_y + row * m;
      const std::uint32_t first = rgb(x0, y0);
      const bool in_quiet = row < quiet || col < quiet || row >= n + quiet || col >= n + quiet;
      for (int y = y0; y < y0 + m; ++y) {
        for (int x = x0; x < x0 + m; ++x) {
          const std::uint32_t p = rgb(x, y);
          impure += (p != 0 && p != 0xFFFFFF);
          not_uniform += (p != first);
          dirty_quiet += (in_quiet && p != 0xFFFFFF);
        }
      }
      dark += (!in_quiet && first == 0);
    }
  }
  cairo_surface_destroy(image);
  CHECK(impure == 0);
  CHECK(not_uniform == 0);
  CHECK(dirty_quiet == 0);
  CHECK(dark > n * n / 3);  // a QR is about half dark
  CHECK(dark < n * n * 2 / 3);
}

TEST_CASE("PNG card: empty municipality, long balance URL, big amount still decode") {
  TempDir dir;
  CardFace face = make_face(3);
  face.municipality.clear();
  face.programme_name =
      "Contributo straordinario per l'acquisto di generi alimentari e di prima necessit\u00E0";
  face.amount_cents = 123456789;
  face.balance_url = "https://saldo.servizi-sociali.comune.example/c/" + std::string(200, 'x');
  face.qr_text += std::string(40, '*');  // level M, version 7
  const std::string path = dir.file("long.png");
  REQUIRE(render_card(face, CardFormat::png, path).ok());
  const std::vector<std::string> decoded = decode_qr(path);
  REQUIRE(decoded.size() == 1);
  CHECK(decoded[0] == face.qr_text);
}

TEST_CASE("SVG card: well-formed, card-sized, with a text title; zbarimg reads it if it can") {
  TempDir dir;
  const CardFace face = make_face(4);
  const std::string path = dir.file("card.svg");
  Status s = render_card(face, CardFormat::svg, path);
  REQUIRE_MESSAGE(s.ok(), s.to_string());
  const std::string svg = read_file(path);
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("<svg") != std::string::npos);
  // 85.60 x 53.98 mm in points.
  CHECK(svg.find("width=\"242.645669pt\" height=\"153.014173pt\"") != std::string::npos);
  CHECK(svg.find("<title>") != std::string::npos);
  CHECK(svg.find(face.card_number) != std::string::npos);
  CHECK(svg.find("Valida fino al 31/12/2026") != std::string::npos);
  CHECK(svg.find(face.qr_text) == std::string::npos);  // the token is only in the QR
  const std::size_t last = svg.find_last_not_of("\n");
  REQUIRE(last != std::string::npos);
  CHECK(svg.substr(last - 5, 6) == "</svg>");
  CHECK(std::count(svg.begin(), svg.end(), '<') > 20);  // glyphs and shapes were drawn

  // Decoded too where zbarimg reads SVG (ImageMagick's svg coder, in
  // libmagickcore-6.q16-6-extra), enlarged 4x, as ImageMagick rasterises SVG
  // at 96 dpi: 1.9 px per module is too few for zbar.
  std::string enlarged = svg;
  const std::string size = "width=\"242.645669pt\" height=\"153.014173pt\"";
  const std::size_t at = enlarged.find(size);
  REQUIRE(at != std::string::npos);
  enlarged.replace(at, size.size(), "width=\"970.582676pt\" height=\"612.056692pt\"");
  const std::string enlarged_path = dir.file("card4x.svg");
  std::ofstream(enlarged_path, std::ios::binary) << enlarged;
  // scripts/install-deps.sh installs that coder, so this decode always runs.
  Zbar z = zbar(enlarged_path);
  INFO("zbarimg: " << z.errors);
  REQUIRE(z.exit_code == 0);
  REQUIRE(z.symbols.size() == 1);
  CHECK(z.symbols[0] == face.qr_text);
}

TEST_CASE("PDF card: one ID-1 page; rasterised by poppler, zbarimg reads the token") {
  TempDir dir;
  const CardFace face = make_face(5);
  const std::string path = dir.file("card.pdf");
  Status s = render_card(face, CardFormat::pdf, path);
  REQUIRE_MESSAGE(s.ok(), s.to_string());
  CHECK(read_file(path).rfind("%PDF-", 0) == 0);
  CHECK(pdfinfo_field(path, "Pages") == "1");
  CHECK(pdfinfo_field(path, "Page size").rfind("242.646 x 153.014 pts", 0) == 0);
  const std::vector<std::string> pages = rasterise(path, dir, 300);
  REQUIRE(pages.size() == 1);
  const std::vector<std::string> decoded = decode_qr(pages[0]);
  REQUIRE(decoded.size() == 1);
  CHECK(decoded[0] == face.qr_text);
}

TEST_CASE("A4 sheets: 20 cards on 3 pages, every token read back from 200 dpi pages") {
  TempDir dir;
  std::vector<CardFace> faces;
  std::multiset<std::string> tokens;
  for (unsigned i = 0; i < 20; ++i) {
    faces.push_back(make_face(100 + i));
    tokens.insert(faces.back().qr_text);
  }
  REQUIRE(tokens.size() == 20);
  const std::string path = dir.file("sheet.pdf");
  std::vector<std::size_t> progress;
  const auto start = std::chrono::steady_clock::now();
  Status s = render_card_sheets(faces, path, [&](std::size_t done, std::size_t total) {
    CHECK(total == 20);
    progress.push_back(done);
  });
  const auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  REQUIRE_MESSAGE(s.ok(), s.to_string());
  MESSAGE("20-card sheet: " << elapsed << " ms, " << fs::file_size(path) << " bytes");
  CHECK(progress.size() == 20);
  CHECK(progress.back() == 20);
  CHECK(pdfinfo_field(path, "Pages") == "3");
  CHECK(pdfinfo_field(path, "Page size").rfind("595.276 x 841.89 pts (A4)", 0) == 0);
  const std::vector<std::string> pages = rasterise(path, dir, 200);
  REQUIRE(pages.size() == 3);
  std::multiset<std::string> decoded;
  std::vector<std::size_t> per_page;
  for (const std::string& page : pages) {
    const std::vector<std::string> lines = decode_qr(page);
    per_page.push_back(lines.size());
    decoded.insert(lines.begin(), lines.end());
  }
  CHECK(per_page == std::vector<std::size_t>{8, 8, 4});
  CHECK(decoded == tokens);
  CHECK(no_part_files(dir));
}

TEST_CASE("PdfSheetWriter: 8 cards fill exactly one page; finish twice is an error") {
  TempDir dir;
  const std::string path = dir.file("eight.pdf");
  StatusOr<PdfSheetWriter> writer = PdfSheetWriter::create(path);
  REQUIRE(writer.ok());
  for (unsigned i = 0; i < 8; ++i) REQUIRE(writer->add(make_face(200 + i)).ok());
  CHECK(writer->pages() == 1);
  CHECK(writer->cards() == 8);
  CHECK(!fs::exists(path));  // only the .part file until finish()
  REQUIRE(writer->finish().ok());
  CHECK(pdfinfo_field(path, "Pages") == "1");
  CHECK(!writer->finish().ok());
  CHECK(!writer->add(make_face(300)).ok());
  CHECK(no_part_files(dir));
}

TEST_CASE("an abandoned or empty sheet leaves no file") {
  TempDir dir;
  const std::string path = dir.file("abandoned.pdf");
  {
    StatusOr<PdfSheetWriter> writer = PdfSheetWriter::create(path);
    REQUIRE(writer.ok());
    REQUIRE(writer->add(make_face(7)).ok());
  }
  CHECK(!fs::exists(path));
  CHECK(no_part_files(dir));
  StatusOr<PdfSheetWriter> empty = PdfSheetWriter::create(path);
  REQUIRE(empty.ok());
  CHECK(empty->finish().code() == StatusCode::invalid_argument);
  CHECK(render_card_sheets({}, path).code() == StatusCode::invalid_argument);
  CHECK(!fs::exists(path));
}

TEST_CASE("an unwritable path is io_error naming the path, and nothing is left behind") {
  TempDir dir;
  const std::string not_a_dir = dir.file("plain-file");
  std::ofstream(not_a_dir) << "x";
  const std::vector<std::string> paths = {not_a_dir + "/card.png",
                                          "/nonexistent-buoni-dir/card.png"};
  for (const std::string& path : paths) {
    for (CardFormat format : {CardFormat::png, CardFormat::svg, CardFormat::pdf}) {
      Status s = render_card(make_face(8), format, path);
      CHECK(s.code() == StatusCode::io_error);
      CHECK_MESSAGE(s.message().find(path) != std::string::npos, s.to_string());
    }
    StatusOr<PdfSheetWriter> writer = PdfSheetWriter::create(path);
    CHECK(writer.status().code() == StatusCode::io_error);
    Status sheets = render_card_sheets({make_face(9)}, path);
    CHECK(sheets.code() == StatusCode::io_error);
    CHECK(sheets.message().find(path) != std::string::npos);
  }
  CHECK(no_part_files(dir));
}

TEST_CASE("a malformed card face is invalid_argument and writes nothing") {
  TempDir dir;
  const std::string path = dir.file("bad.png");
  auto check_rejected = [&](const CardFace& face) {
    Status s = render_card(face, CardFormat::png, path);
    CHECK_MESSAGE(s.code() == StatusCode::invalid_argument, s.to_string());
    CHECK(!fs::exists(path));
  };
  CardFace face = make_face(10);
  face.expiry_date = "31/12/2026";
  check_rejected(face);
  face.expiry_date = "2026-13-01";
  check_rejected(face);
  face = make_face(10);
  face.amount_cents = -1;
  check_rejected(face);
  face = make_face(10);
  face.qr_text.clear();
  check_rejected(face);
  face = make_face(10);
  face.card_number.clear();
  check_rejected(face);
  face = make_face(10);
  face.qr_text = std::string(2000, 'A');  // a QR far too dense for a card
  check_rejected(face);
  // A bad face in a sheet stops the sheet, and no partial PDF remains.
  std::vector<CardFace> faces = {make_face(11), face, make_face(12)};
  CHECK(render_card_sheets(faces, dir.file("bad.pdf")).code() == StatusCode::invalid_argument);
  CHECK(!fs::exists(dir.file("bad.pdf")));
  CHECK(no_part_files(dir));
}

TEST_CASE("rendering from several threads at once gives the same bytes as one thread") {
  constexpr int kThreads = 4;
  std::vector<std::string> expected;
  for (int i = 0; i < kThreads; ++i) {
    StatusOr<std::string> png = render_card_bytes(make_face(20 + i), CardFormat::png);
    REQUIRE(png.ok());
    expected.push_back(*png);
  }
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&got, i] {
      for (int round = 0; round < 5; ++round) {
        StatusOr<std::string> png = render_card_bytes(make_face(20 + i), CardFormat::png);
        got[i] = png.ok() ? *png : std::string();
        if (!png.ok()) return;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) CHECK(got[i] == expected[i]);
}

}  // namespace
}  // namespace buoni::api
