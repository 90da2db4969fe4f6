#include "base64.h"

#include <array>

namespace gs {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0-63 for alphabet characters, 0xff for everything else.
constexpr std::array<uint8_t, 256> decodeTable() {
  std::array<uint8_t, 256> t{};
  for (auto& v : t) v = 0xff;
  for (int i = 0; i < 64; i++) t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<uint8_t>(i);
  return t;
}
constexpr std::array<uint8_t, 256> kDecode = decodeTable();
}  // namespace

void base64Encode(const uint8_t* src, size_t n, char* out) {
  size_t i = 0;
  for (; i + 3 <= n; i += 3, out += 4) {
    const uint32_t v = (uint32_t(src[i]) << 16) | (uint32_t(src[i + 1]) << 8) | src[i + 2];
    out[0] = kAlphabet[v >> 18];
    out[1] = kAlphabet[(v >> 12) & 63];
    out[2] = kAlphabet[(v >> 6) & 63];
    out[3] = kAlphabet[v & 63];
  }
  if (i < n) {
    const uint32_t v = (uint32_t(src[i]) << 16) | (i + 1 < n ? uint32_t(src[i + 1]) << 8 : 0);
    out[0] = kAlphabet[v >> 18];
    out[1] = kAlphabet[(v >> 12) & 63];
    out[2] = i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out[3] = '=';
  }
}

int64_t base64DecodeStrict(const char* src, size_t n, uint8_t* out) {
  if (n % 4 == 1) return -1;
  const auto* s = reinterpret_cast<const uint8_t*>(src);
  uint8_t* o = out;
  size_t i = 0;
  // Four characters at a time; any character outside the alphabet sets a high bit in `bad`.
  uint32_t bad = 0;
  for (; i + 4 <= n; i += 4, o += 3) {
    const uint32_t a = kDecode[s[i]], b = kDecode[s[i + 1]], c = kDecode[s[i + 2]], d = kDecode[s[i + 3]];
    bad |= a | b | c | d;
    const uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    o[0] = uint8_t(v >> 16);
    o[1] = uint8_t(v >> 8);
    o[2] = uint8_t(v);
  }
  const size_t rest = n - i;  // 0, 2 or 3
  if (rest >= 2) {
    const uint32_t a = kDecode[s[i]], b = kDecode[s[i + 1]], c = rest == 3 ? kDecode[s[i + 2]] : 0;
    bad |= a | b | c;
    const uint32_t v = (a << 18) | (b << 12) | (c << 6);
    *o++ = uint8_t(v >> 16);
    if (rest == 3) *o++ = uint8_t(v >> 8);
  }
  if (bad & 0x80) return -1;
  return int64_t(o - out);
}
}  // namespace gs
