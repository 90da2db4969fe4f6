// The column matrix of a convolution (native/conv.cpp): vol2col writes the column rows of an image's channels for a
// tile of output positions, col2vol adds them back (its adjoint). Included by conv.cpp only.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels.h"

namespace gs {
namespace conv_columns {

// Positions j in [0, len) whose w-index iw0 + j*s lies inside [0, n): [lo, hi) (empty when hi <= lo).
inline void validSpan(int64_t iw0, int64_t s, int64_t n, int64_t len, int64_t& lo, int64_t& hi) {
  lo = iw0 >= 0 ? 0 : (-iw0 + s - 1) / s;
  hi = iw0 >= n ? 0 : std::min(len, (n - 1 - iw0) / s + 1);
  lo = std::min(lo, len);
  if (hi < lo) hi = lo;
}

// Calls f(offset, len, row, iw0, lo, hi) for the runs of output positions [p0, p1) that share one output line, for
// the kernel tap (kd, kh, kw): the run starts `offset` positions into the tile and meets the input line `row`
// (element index of its first element, or -1 when the line is in the padding) at w-index iw0, then every s[2]
// elements; its positions [lo, hi) meet the line, the others its padding. Whole lines all have the same iw0, lo and
// hi, so those are worked out once per tap: this runs once per output line and kernel tap, and must stay cheap.
template <typename F>
void forEachRun(const ConvGeom& g, int64_t p0, int64_t p1, int64_t kd, int64_t kh, int64_t kw, F&& f) {
  const int64_t width = g.out[2], plane = g.out[1] * width, tapW = kw * g.d[2] - g.pb[2];
  int64_t fullLo, fullHi;
  validSpan(tapW, g.s[2], g.in[2], width, fullLo, fullHi);
  int64_t od = p0 / plane, oh = (p0 % plane) / width, ow = p0 % width;
  for (int64_t p = p0; p < p1;) {
    const int64_t len = std::min(width - ow, p1 - p);
    const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
    const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
    const int64_t iw0 = ow * g.s[2] + tapW;
    const int64_t row = id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1] ? (id * g.in[1] + ih) * g.in[2] : -1;
    if (len == width) {
      f(p - p0, len, row, iw0, fullLo, fullHi);
    } else {
      int64_t lo, hi;
      validSpan(iw0, g.s[2], g.in[2], len, lo, hi);
      f(p - p0, len, row, iw0, lo, hi);
    }
    p += len;
    ow = 0;
    if (++oh == g.out[1]) {
      oh = 0;
      od++;
    }
  }
}

// Stride 1 with input lines and planes as long as the output's (padding that keeps the size, as in a 3x3 pad-1
// convolution): output position p of a plane then reads input element p + shift of the matching input plane for every
// kernel tap, so a column row is one contiguous copy per plane, then zeros over the padding (a few elements at the
// ends of each line, whole lines above and below). The copy reads only elements of the plane: it starts at the
// first valid position of the first valid line and ends after the last valid one of the last.
inline bool shiftable(const ConvGeom& g, int64_t p0, int64_t p1) {
  return p0 == 0 && p1 == g.outSize() && g.s[0] == 1 && g.s[1] == 1 && g.s[2] == 1 && g.in[1] == g.out[1] &&
         g.in[2] == g.out[2];
}

template <typename T> void vol2colShifted(const T* x, int64_t chans, const ConvGeom& g, T* col) {
  const int64_t W = g.out[2], H = g.out[1], plane = H * W, inPlane = plane, inSz = g.inSize(), P = g.outSize();
  T* dst = col;
  for (int64_t c = 0; c < chans; c++) {
    const T* xc = x + c * inSz;
    for (int64_t kd = 0; kd < g.k[0]; kd++)
      for (int64_t kh = 0; kh < g.k[1]; kh++)
        for (int64_t kw = 0; kw < g.k[2]; kw++, dst += P) {
          const int64_t dd = kd * g.d[0] - g.pb[0], dh = kh * g.d[1] - g.pb[1], dw = kw * g.d[2] - g.pb[2];
          // valid ow in [lo, hi), oh in [hlo, hhi)
          const int64_t lo = std::min(W, std::max<int64_t>(0, -dw)), hi = std::max(lo, std::min(W, W - dw));
          const int64_t hlo = std::min(H, std::max<int64_t>(0, -dh)), hhi = std::max(hlo, std::min(H, H - dh));
          for (int64_t od = 0; od < g.out[0]; od++) {
            T* o = dst + od * plane;
            const int64_t id = od + dd;
            if (id < 0 || id >= g.in[0] || lo == hi || hlo == hhi) {
              std::fill(o, o + plane, T(0));
              continue;
            }
            std::fill(o, o + hlo * W + lo, T(0));
            const int64_t first = hlo * W + lo, last = (hhi - 1) * W + hi;
            const T* src = xc + (id * inPlane + dh * W + dw + first);
            std::copy(src, src + (last - first), o + first);
            std::fill(o + last, o + plane, T(0));
            for (int64_t oh = hlo; oh < hhi; oh++) {
              T* line = o + oh * W;
              if (oh > hlo) std::fill(line, line + lo, T(0));
              if (oh + 1 < hhi) std::fill(line + hi, line + W, T(0));
            }
          }
        }
  }
}

// The column rows of `chans` channels starting at x (each of g.inSize() elements) for output positions [p0, p1).
template <typename T> void vol2col(const T* x, int64_t chans, const ConvGeom& g, int64_t p0, int64_t p1, T* col) {
  if (shiftable(g, p0, p1)) {
    vol2colShifted(x, chans, g, col);
    return;
  }
  const int64_t ld = p1 - p0, inSz = g.inSize(), s = g.s[2];
  T* dst = col;
  for (int64_t c = 0; c < chans; c++) {
    const T* xc = x + c * inSz;
    for (int64_t kd = 0; kd < g.k[0]; kd++)
      for (int64_t kh = 0; kh < g.k[1]; kh++)
        for (int64_t kw = 0; kw < g.k[2]; kw++, dst += ld)
          forEachRun(g, p0, p1, kd, kh, kw, [&](int64_t off, int64_t len, int64_t row, int64_t iw0, int64_t lo, int64_t hi) {
            T* o = dst + off;
            if (row < 0) {
              for (int64_t j = 0; j < len; j++) o[j] = T(0);
              return;
            }
            for (int64_t j = 0; j < lo; j++) o[j] = T(0);
            const T* src = xc + row;
            if (s == 1) {
              for (int64_t j = lo; j < hi; j++) o[j] = src[iw0 + j];
            } else {
              for (int64_t j = lo; j < hi; j++) o[j] = src[iw0 + j * s];
            }
            for (int64_t j = hi; j < len; j++) o[j] = T(0);
          });
  }
}

// Adds the column rows back onto the `chans` channels at x: the adjoint of vol2col.
template <typename T> void col2vol(const T* col, int64_t chans, const ConvGeom& g, int64_t p0, int64_t p1, T* x) {
  const int64_t ld = p1 - p0, inSz = g.inSize(), s = g.s[2];
  const T* src = col;
  for (int64_t c = 0; c < chans; c++) {
    T* xc = x + c * inSz;
    for (int64_t kd = 0; kd < g.k[0]; kd++)
      for (int64_t kh = 0; kh < g.k[1]; kh++)
        for (int64_t kw = 0; kw < g.k[2]; kw++, src += ld)
          forEachRun(g, p0, p1, kd, kh, kw, [&](int64_t off, int64_t len, int64_t row, int64_t iw0, int64_t lo, int64_t hi) {
            if (row < 0) return;
            const T* in = src + off;
            T* o = xc + row;
            if (s == 1) {
              for (int64_t j = lo; j < hi; j++) o[iw0 + j] += in[j];
            } else {
              for (int64_t j = lo; j < hi; j++) o[iw0 + j * s] += in[j];
            }
          });
  }
}

}  // namespace conv_columns
}  // namespace gs
