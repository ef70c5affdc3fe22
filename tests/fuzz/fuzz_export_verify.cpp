// Fuzz target: the export verifier (engine/export.h, verify_export) over any
// text, with the world's public key (the seed corpus holds real exports of
// the world in both formats). Properties: a file verifies without
// findings only when complete; counts are consistent; the summary line
// exists; findings kept never exceed findings_total.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "engine/export.h"
#include "fuzz_world.h"

namespace {

using buoni::fuzz::fuzz_check;

void check_verdict(const buoni::engine::ExportVerdict& v) {
  fuzz_check(v.findings.size() <= v.findings_total, "more findings kept than counted");
  fuzz_check(v.verified_entries <= v.entries, "more entries verified than read");
  fuzz_check(!v.ok() || v.complete, "a verdict is ok without the end record");
  fuzz_check(!v.summary().empty(), "a verdict without a summary");
  for (const auto& f : v.findings) {
    fuzz_check(!f.to_string().empty(), "a finding without text");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<buoni::VerifyKey> keys = buoni::fuzz::world_verify_keys();
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  auto verdict = buoni::engine::verify_export(in, keys, size);
  fuzz_check(verdict.ok(), "verify_export failed on an in-memory stream");
  check_verdict(*verdict);
  return 0;
}
