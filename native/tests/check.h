// A minimal test harness for the kernel tests (native/tests): TEST(name) registers a case, CHECK* record failures
// with file and line, and main() (main.cpp) runs every case and exits non-zero when any check failed. No framework:
// the binary builds wherever the kernels build, and under the sanitizers every instrumented line is ours.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "../common.h"

namespace gst {

struct Case {
  const char* name;
  void (*fn)();
};
std::vector<Case>& cases();
extern int failures;

struct Register {
  Register(const char* name, void (*fn)()) { cases().push_back({name, fn}); }
};

void report(const char* file, int line, const std::string& what);

// Deterministic pseudo-random numbers (a 64-bit LCG): the same data on every machine and every run.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 6364136223846793005ULL + 1442695040888963407ULL) {}
  uint64_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return s >> 11;
  }
  // Uniform in [lo, hi), rounded to a float so that FP32 and FP64 runs see the same inputs.
  double uniform(double lo, double hi) { return double(float(lo + (hi - lo) * double(next()) / double(1ULL << 53))); }
  int64_t below(int64_t n) { return int64_t(next() % uint64_t(n)); }
};

template <typename T> std::vector<T> randomVec(Rng& r, size_t n, double lo = -1, double hi = 1) {
  std::vector<T> v(n);
  for (auto& x : v) x = T(r.uniform(lo, hi));
  return v;
}

template <typename T> gs::DType dtypeOf();
template <> inline gs::DType dtypeOf<float>() { return gs::DType::F32; }
template <> inline gs::DType dtypeOf<double>() { return gs::DType::F64; }
template <> inline gs::DType dtypeOf<int32_t>() { return gs::DType::I32; }
template <> inline gs::DType dtypeOf<int64_t>() { return gs::DType::I64; }
template <> inline gs::DType dtypeOf<uint8_t>() { return gs::DType::BOOL; }

// A kernel view of a vector (the kernels take non-owning views).
template <typename T> gs::Arr view(std::vector<T>& v) { return gs::Arr{dtypeOf<T>(), v.data(), int64_t(v.size())}; }
template <typename T> gs::Arr view(const std::vector<T>& v) { return view(const_cast<std::vector<T>&>(v)); }

// |a - b| <= atol + rtol * |b|, NaN equal to NaN, equal infinities equal.
inline bool close(double a, double b, double rtol, double atol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= atol + rtol * std::fabs(b);
}

template <typename A, typename B>
bool allClose(const char* file, int line, const char* what, const std::vector<A>& got, const std::vector<B>& want,
              double rtol, double atol) {
  if (got.size() != want.size()) {
    report(file, line, std::string(what) + ": " + std::to_string(got.size()) + " values, want " +
                           std::to_string(want.size()));
    return false;
  }
  for (size_t i = 0; i < got.size(); i++)
    if (!close(double(got[i]), double(want[i]), rtol, atol)) {
      report(file, line, std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(double(got[i])) +
                             ", want " + std::to_string(double(want[i])));
      return false;
    }
  return true;
}

// Runs f and returns the code of the KernelError it throws (-1 when it returns normally).
inline int errorCode(const std::function<void()>& f) {
  try {
    f();
  } catch (const gs::KernelError& e) {
    return int(e.code);
  }
  return -1;
}

}  // namespace gst

#define GST_CAT2(a, b) a##b
#define GST_CAT(a, b) GST_CAT2(a, b)
#define TEST(name)                                                         \
  static void GST_CAT(test_, name)();                                      \
  static ::gst::Register GST_CAT(reg_, name)(#name, &GST_CAT(test_, name)); \
  static void GST_CAT(test_, name)()
#define CHECK(cond) \
  do {              \
    if (!(cond)) ::gst::report(__FILE__, __LINE__, #cond); \
  } while (0)
#define CHECK_CLOSE(got, want, rtol, atol) ::gst::allClose(__FILE__, __LINE__, #got, got, want, rtol, atol)
#define CHECK_EQUAL(got, want) ::gst::allClose(__FILE__, __LINE__, #got, got, want, 0, 0)
#define CHECK_THROWS(code, expr) CHECK(::gst::errorCode([&] { expr; }) == int(code))
