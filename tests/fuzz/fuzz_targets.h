// The fuzz targets, by name: each is fuzz_<name>.cpp with its seed corpus in
// corpus/<name>/ and its kept crashes in regressions/<name>/. CMakeLists.txt
// and replay.cmake hold the same list.
#pragma once

#define BUONI_FUZZ_TARGETS(X) \
  X(token)                    \
  X(card_number)              \
  X(api_body)                 \
  X(http)                     \
  X(csv)                      \
  X(export_verify)
