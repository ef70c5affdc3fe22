// A shop key as a QR code drawn in the terminal with Unicode half blocks, so
// the till page (GET /pos) can sign in by scanning the screen instead of
// typing 67 characters. Dark modules on a light background with the 4-module
// quiet zone scanners need. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace buoni::tools {

// The QR of `text` as lines of "█", "▀", "▄" and " " (two module rows a
// line), ending in a newline; "" if libqrencode cannot encode it.
[[nodiscard]] std::string terminal_qr(std::string_view text);

}  // namespace buoni::tools
