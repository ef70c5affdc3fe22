#include "tools/key_qr.h"

#include <qrencode.h>

#include <memory>

namespace buoni::tools {

std::string terminal_qr(std::string_view text) {
  std::string copy(text);
  std::unique_ptr<QRcode, decltype(&QRcode_free)> code(
      QRcode_encodeString(copy.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1), &QRcode_free);
  if (!code) return "";
  constexpr int quiet = 4;
  const int width = code->width;
  const int side = width + 2 * quiet;
  // Dark at (x, y) of the symbol with its quiet zone.
  auto dark = [&](int x, int y) {
    x -= quiet;
    y -= quiet;
    if (x < 0 || y < 0 || x >= width || y >= width) return false;
    return (code->data[y * width + x] & 1) != 0;
  };
  // Terminals draw light text on dark: a "block" here is a light module.
  std::string out;
  for (int y = 0; y < side; y += 2) {
    for (int x = 0; x < side; ++x) {
      bool top_light = !dark(x, y), bottom_light = y + 1 < side ? !dark(x, y + 1) : true;
      out += top_light && bottom_light ? "█" : top_light ? "▀" : bottom_light ? "▄" : " ";
    }
    out += '\n';
  }
  return out;
}

}  // namespace buoni::tools
