// fsync_bench: the disk's raw rate of synced small appends, the physical
// ceiling of a design that makes one synced write per request. It appends a
// small record to a fresh file and fdatasync()s it, again and again, for N
// seconds, from one thread (each append grows the file, as a write-ahead
// log does, so the file's size is synced too), then deletes the file.
//
//   fsync_bench [--file PATH] [--seconds S] [--record-bytes N]
// Prints one human line and one machine-readable line:
//   RESULT fsync per_s=... p50_ms=... p99_ms=... p999_ms=...
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Wall = std::chrono::steady_clock;

struct Args {
  std::string file = "./fsync_bench.data";
  double seconds = 3.0;
  std::size_t record_bytes = 128;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "fsync_bench: %s\nusage: fsync_bench [--file PATH] [--seconds S] "
               "[--record-bytes N]\n",
               why);
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) usage("a flag without its value");
    const char* value = argv[++i];
    if (flag == "--file") {
      a.file = value;
    } else if (flag == "--seconds") {
      a.seconds = std::atof(value);
    } else if (flag == "--record-bytes") {
      a.record_bytes = static_cast<std::size_t>(std::atol(value));
    } else {
      usage("unknown flag");
    }
  }
  if (a.seconds <= 0 || a.record_bytes < 1 || a.record_bytes > 65536) usage("bad value");
  return a;
}

double percentile_ms(const std::vector<double>& sorted_ms, double fraction) {
  if (sorted_ms.empty()) return 0;
  auto at = static_cast<std::size_t>(fraction * static_cast<double>(sorted_ms.size()));
  return sorted_ms[std::min(at, sorted_ms.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse_args(argc, argv);
  int fd = ::open(a.file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "fsync_bench: cannot create %s: %s\n", a.file.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::string record(a.record_bytes - 1, 'r');
  record.push_back('\n');
  std::vector<double> latencies_ms;
  auto start = Wall::now();
  auto deadline = start + std::chrono::duration_cast<Wall::duration>(
                              std::chrono::duration<double>(a.seconds));
  while (Wall::now() < deadline) {
    auto t0 = Wall::now();
    if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size()) ||
        ::fdatasync(fd) != 0) {
      std::fprintf(stderr, "fsync_bench: write/fdatasync failed: %s\n", std::strerror(errno));
      ::close(fd);
      ::unlink(a.file.c_str());
      return 1;
    }
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(Wall::now() - t0).count());
  }
  double elapsed_s = std::chrono::duration<double>(Wall::now() - start).count();
  ::close(fd);
  ::unlink(a.file.c_str());
  std::sort(latencies_ms.begin(), latencies_ms.end());
  double per_s = static_cast<double>(latencies_ms.size()) / elapsed_s;
  std::printf("fsync_bench: %zu appends of %zu bytes, each fdatasync'd, in %.1f s: %.0f/s\n",
              latencies_ms.size(), a.record_bytes, elapsed_s, per_s);
  std::printf("RESULT fsync per_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f\n", per_s,
              percentile_ms(latencies_ms, 0.50), percentile_ms(latencies_ms, 0.99),
              percentile_ms(latencies_ms, 0.999));
  return 0;
}
