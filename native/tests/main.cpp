// Runs every registered kernel test (native/tests/*.cpp); `gradserve_native_tests [substring]` runs the cases whose
// name contains the substring. Exit status 0 only when every check passed.
#include <cstring>
#include <exception>

#include "check.h"

namespace gst {
std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}
int failures = 0;
void report(const char* file, int line, const std::string& what) {
  failures++;
  std::fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what.c_str());
}
}  // namespace gst

// The buffer pool calls this after each fresh allocation; the binding's version (binding/args.cc) only advises huge
// pages for buffers of 4 MiB and more, which these tests do not need.
namespace gsb {
void adviseHugePages(void*, size_t) {}
}  // namespace gsb

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int ran = 0;
  for (const auto& c : gst::cases()) {
    if (filter && !std::strstr(c.name, filter)) continue;
    const int before = gst::failures;
    try {
      c.fn();
    } catch (const std::exception& e) {
      gst::report(c.name, 0, std::string("uncaught exception: ") + e.what());
    }
    ran++;
    std::printf("%s %s\n", gst::failures == before ? "ok  " : "FAIL", c.name);
  }
  std::printf("%d cases, %d failed checks\n", ran, gst::failures);
  return gst::failures == 0 && ran > 0 ? 0 : 1;
}
