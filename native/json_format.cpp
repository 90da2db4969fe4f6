// Floating-point tensors as JSON number arrays, byte for byte what JSON.stringify writes for the same doubles, at a
// fraction of its cost: V8 spends ~0.5-1 us per FP32 value (17 significant digits once widened to a double), which
// made the text of a 200K-element gradient cost ~50 ms of event loop. std::to_chars gives the shortest digits that
// read back as the same double (the digits ECMAScript's Number::toString picks); the layout below follows that
// algorithm's notation rules. Non-finite values become the strings "NaN", "Infinity", "-Infinity" (the wire
// convention), and -0 is written as 0 (as JSON.stringify does).
#include <charconv>
#include <cmath>
#include <cstring>

#include "json_format.h"

namespace gs {
namespace {

char* putDigits(char* p, const char* d, int k) {
  std::memcpy(p, d, size_t(k));
  return p + k;
}

char* writeNumber(char* p, double x) {
  if (x != x) return putDigits(p, "\"NaN\"", 5);
  if (std::isinf(x)) return x > 0 ? putDigits(p, "\"Infinity\"", 10) : putDigits(p, "\"-Infinity\"", 11);
  if (x == 0) {
    *p++ = '0';
    return p;
  }
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  const char* s = buf;
  if (*s == '-') {
    *p++ = '-';
    s++;
  }
  char digits[24];
  int k = 0;
  const char* q = s;
  for (; q < r.ptr && *q != 'e'; q++)
    if (*q != '.') digits[k++] = *q;
  int e = 0;
  std::from_chars(q + 1 + (q[1] == '+' ? 1 : 0), r.ptr, e);
  const int n = e + 1;  // x = 0.d1d2...dk * 10^n
  if (k <= n && n <= 21) {
    p = putDigits(p, digits, k);
    for (int i = k; i < n; i++) *p++ = '0';
  } else if (0 < n && n <= 21) {
    p = putDigits(p, digits, n);
    *p++ = '.';
    p = putDigits(p, digits + n, k - n);
  } else if (-6 < n && n <= 0) {
    *p++ = '0';
    *p++ = '.';
    for (int i = 0; i < -n; i++) *p++ = '0';
    p = putDigits(p, digits, k);
  } else {
    *p++ = digits[0];
    if (k > 1) {
      *p++ = '.';
      p = putDigits(p, digits + 1, k - 1);
    }
    *p++ = 'e';
    *p++ = n - 1 < 0 ? '-' : '+';
    p = std::to_chars(p, p + 8, n - 1 < 0 ? 1 - n : n - 1).ptr;
  }
  return p;
}

template <typename T>
size_t writeArray(const T* v, int64_t n, char* out) {
  char* p = out;
  *p++ = '[';
  for (int64_t i = 0; i < n; i++) {
    if (i > 0) *p++ = ',';
    p = writeNumber(p, double(v[i]));
  }
  *p++ = ']';
  return size_t(p - out);
}

}  // namespace

size_t jsonNumbersBound(int64_t n) { return size_t(n) * kJsonNumberChars + 2; }

size_t jsonNumbers(const Arr& a, char* out) {
  if (a.dt == DType::F32) return writeArray(a.as<float>(), a.n, out);
  if (a.dt == DType::F64) return writeArray(a.as<double>(), a.n, out);
  fail(ErrCode::InvalidArgument, "jsonNumbers: FP32 or FP64 data expected");
}

}  // namespace gs
