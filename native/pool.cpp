// Max and average pooling over the trailing 1-3 spatial axes of a channels-first tensor (N, C, *S), with their
// gradients: max pooling's gather/scatter through the first maximum of each window, average pooling's spread of the
// cotangent over each window. Spatial ranks below 3 are run as 3-d with leading size-1 axes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <limits>

#include "kernels.h"

namespace gs {

namespace {
constexpr int kAxes = 3;

// The positions a window reads along one axis: start + j * d for j in [jlo, jhi) (only those inside the input).
struct AxisRange {
  int64_t start = 0, jlo = 0, jhi = 0, padEnd = 0;
};

struct Ranges {
  std::vector<AxisRange> axis[kAxes];
};

Ranges windowRanges(const PoolGeom& g) {
  Ranges r;
  if (g.planes == 0) return r;
  for (int a = 0; a < kAxes; a++) {
    r.axis[a].resize(size_t(g.out[a]));
    for (int64_t o = 0; o < g.out[a]; o++) {
      AxisRange& w = r.axis[a][size_t(o)];
      w.start = o * g.s[a] - g.pb[a];
      w.jlo = w.start < 0 ? (-w.start + g.d[a] - 1) / g.d[a] : 0;
      w.jhi = w.start >= g.in[a] ? 0 : std::min(g.k[a], (g.in[a] - 1 - w.start) / g.d[a] + 1);
      if (w.jhi < w.jlo) w.jhi = w.jlo;
      // the avg divisor with count_include_pad: up to the declared right padding, never beyond it
      w.padEnd = std::min(w.start + g.k[a], g.in[a] + g.pa[a]);
    }
  }
  return r;
}

// Calls f(planeIndex, outIndexInPlane, r0, r1, r2) for every window of every plane.
template <typename F> void forEachWindow(const PoolGeom& g, const Ranges& r, F&& f) {
  for (int64_t p = 0; p < g.planes; p++) {
    int64_t o = 0;
    for (const AxisRange& r0 : r.axis[0])
      for (const AxisRange& r1 : r.axis[1])
        for (const AxisRange& r2 : r.axis[2]) f(p, o++, r0, r1, r2);
  }
}

// Index (within its plane) of the first maximum of a window in row-major window order, as PyTorch: a NaN wins (the
// last one seen), -1 when the window reads no input position; the value is -Infinity when every position is.
template <typename T>
int64_t windowArgmax(const PoolGeom& g, const T* xp, const AxisRange& r0, const AxisRange& r1, const AxisRange& r2,
                     T& best) {
  best = -std::numeric_limits<T>::infinity();
  int64_t idx = -1;
  for (int64_t j0 = r0.jlo; j0 < r0.jhi; j0++) {
    const int64_t p0 = (r0.start + j0 * g.d[0]) * g.in[1];
    for (int64_t j1 = r1.jlo; j1 < r1.jhi; j1++) {
      const int64_t p1 = (p0 + r1.start + j1 * g.d[1]) * g.in[2];
      for (int64_t j2 = r2.jlo; j2 < r2.jhi; j2++) {
        const int64_t pos = p1 + r2.start + j2 * g.d[2];
        const T v = xp[pos];
        if (idx < 0) idx = pos;
        if (v > best || v != v) {
          best = v;
          idx = pos;
        }
      }
    }
  }
  return idx;
}

// The same rule for windows of at most two axes (k[0] == 1) without dilation, the common 2-D pooling: rows walked
// directly and the running maximum kept with selects instead of branches (on real data which element wins is
// unpredictable, and the mispredicted branches cost more than the window's reads: LeNet's 2x2 pools went from ~25 ns
// to ~6 ns a window).
// c ? a : b through the bits, so that the compiler cannot turn it back into a branch.
template <typename T> inline T selectIf(bool c, T a, T b) {
  using U = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
  U ua, ub;
  std::memcpy(&ua, &a, sizeof(T));
  std::memcpy(&ub, &b, sizeof(T));
  const U m = U(0) - U(c);
  const U r = (ua & m) | (ub & ~m);
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

bool plainWindows(const PoolGeom& g) { return g.k[0] == 1 && g.d[1] == 1 && g.d[2] == 1; }

template <typename T>
inline int64_t windowArgmax2d(const PoolGeom& g, const T* xp, const AxisRange& r0, const AxisRange& r1,
                              const AxisRange& r2, T& best) {
  best = -std::numeric_limits<T>::infinity();
  if (r0.jlo >= r0.jhi || r1.jlo >= r1.jhi || r2.jlo >= r2.jhi) return -1;
  const int64_t base = r0.start * g.in[1];
  int64_t idx = (base + r1.start + r1.jlo) * g.in[2] + r2.start + r2.jlo;
  for (int64_t j1 = r1.jlo; j1 < r1.jhi; j1++) {
    const int64_t rowStart = (base + r1.start + j1) * g.in[2] + r2.start;
    const T* row = xp + rowStart;
    for (int64_t j2 = r2.jlo; j2 < r2.jhi; j2++) {
      const T v = row[j2];
      const bool take = (v > best) | (v != v);
      best = selectIf(take, v, best);
      const int64_t m = -int64_t(take);
      idx = ((rowStart + j2) & m) | (idx & ~m);
    }
  }
  return idx;
}

// Windows of a plain pooling (plainWindows) that lie wholly inside the input: every position read, so neither bounds
// nor padding need checking. Along each axis they are one run of outputs [lo, hi) (windows move monotonically).
struct InsideRun {
  int64_t lo = 0, hi = 0;
};

InsideRun insideRun(const std::vector<AxisRange>& axis, int64_t k) {
  InsideRun run;
  int64_t o = 0;
  const int64_t n = int64_t(axis.size());
  while (o < n && !(axis[size_t(o)].jlo == 0 && axis[size_t(o)].jhi == k)) o++;
  run.lo = run.hi = o;
  while (run.hi < n && axis[size_t(run.hi)].jlo == 0 && axis[size_t(run.hi)].jhi == k) run.hi++;
  return run;
}

// The first maximum (the order and NaN rule of windowArgmax2d) of `count` <= kBlock consecutive windows of a row,
// all wholly inside the input, the first at w, the next s positions on: best[i] and tap[i], the offset of the picked
// position from its window's first. Tap by tap over the whole block, so the compiler keeps windows in vector lanes;
// KH, KW and S fixed at compile time for the common shapes (0: the runtime kh, kw, s).
constexpr int64_t kBlock = 64;

template <typename T> using TapIndex = typename std::conditional<sizeof(T) == 4, int32_t, int64_t>::type;

template <typename T, int KH, int KW, int S>
inline void insideArgmaxes(const T* w, int64_t ld, int64_t kh, int64_t kw, int64_t s, int64_t count, T* best,
                           TapIndex<T>* tap) {
  using I = TapIndex<T>;
  const int64_t rows = KH > 0 ? KH : kh, cols = KW > 0 ? KW : kw, step = S > 0 ? S : s;
  if (rows * cols == 1) {
    for (int64_t o = 0; o < count; o++) best[o] = w[o * step], tap[o] = 0;
    return;
  }
  // the first two taps in one pass (a separate pass setting tap[] to 0 becomes a memset, slow for short rows)
  const int64_t second = cols > 1 ? 1 : ld;
  for (int64_t o = 0; o < count; o++) {
    const T a = w[o * step], v = w[o * step + second];
    const bool take = (v > a) | (v != v);
    best[o] = take ? v : a;
    tap[o] = take ? I(second) : I(0);
  }
  for (int64_t i = 0; i < rows; i++) {
    for (int64_t j = i == 0 ? 1 + (cols > 1) : i == 1 && cols == 1 ? 1 : 0; j < cols; j++) {
      const T* src = w + i * ld + j;
      const I t = I(i * ld + j);
      for (int64_t o = 0; o < count; o++) {
        const T v = src[o * step];
        const bool take = (v > best[o]) | (v != v);
        best[o] = take ? v : best[o];
        tap[o] = take ? t : tap[o];
      }
    }
  }
}

// f(p, o, idx, best) for every window of a plain pooling, with the first maximum's index in its plane (-1 for a
// window of padding only) and value. The windows wholly inside the input skip every bound check and are taken in
// blocks (insideArgmaxes): LeNet's first pool (2x2 of 64x6x28x28) went from 0.93 to 0.26 ms forward and from 1.53 to
// 0.49 ms for the gradient's scatter (one window at a time through windowArgmax2d), its step from 12.0 to 9.9 ms.
template <typename T, int KH, int KW, int S, typename F>
void plainArgmaxes(const PoolGeom& g, const Ranges& r, const T* px, F& f) {
  const InsideRun rows = insideRun(r.axis[1], g.k[1]), cols = insideRun(r.axis[2], g.k[2]);
  const int64_t ld = g.in[2], s2 = g.s[2];
  T best[kBlock];
  TapIndex<T> tap[kBlock];
  for (int64_t p = 0; p < g.planes; p++) {
    const T* xp = px + p * g.inPlane;
    int64_t o = 0;
    for (const AxisRange& r0 : r.axis[0]) {
      for (int64_t o1 = 0; o1 < g.out[1]; o1++) {
        const AxisRange& r1 = r.axis[1][size_t(o1)];
        const bool inside = r0.jlo < r0.jhi && o1 >= rows.lo && o1 < rows.hi;
        const int64_t lo = inside ? cols.lo : g.out[2], hi = inside ? cols.hi : g.out[2];
        auto edge = [&](int64_t o2) {
          T v;
          const int64_t idx = windowArgmax2d(g, xp, r0, r1, r.axis[2][size_t(o2)], v);
          f(p, o + o2, idx, v);
        };
        for (int64_t o2 = 0; o2 < lo; o2++) edge(o2);
        const int64_t row = (r0.start * g.in[1] + r1.start) * ld;
        for (int64_t o2 = lo; o2 < hi; o2 += kBlock) {
          const int64_t count = std::min(kBlock, hi - o2), at = row + r.axis[2][size_t(o2)].start;
          insideArgmaxes<T, KH, KW, S>(xp + at, ld, g.k[1], g.k[2], s2, count, best, tap);
          for (int64_t i = 0; i < count; i++) f(p, o + o2 + i, at + i * s2 + int64_t(tap[i]), best[i]);
        }
        for (int64_t o2 = hi; o2 < g.out[2]; o2++) edge(o2);
        o += g.out[2];
      }
    }
  }
}

// f(p, o, idx, best) for every window: the fast path of plain windows (2x2 and 3x3 fixed), else windowArgmax.
template <typename T, typename F> void forEachArgmax(const PoolGeom& g, const Ranges& r, const T* px, F&& f) {
  // (a tap's offset in its window, k rows of the input at most, must fit the index lanes: 32 bits for FP32)
  const bool fits = g.k[1] * g.in[2] < (int64_t(1) << 31);
  if (plainWindows(g) && fits) {
    if (g.k[1] == 2 && g.k[2] == 2 && g.s[2] == 2) return plainArgmaxes<T, 2, 2, 2>(g, r, px, f);
    if (g.k[1] == 3 && g.k[2] == 3 && g.s[2] == 2) return plainArgmaxes<T, 3, 3, 2>(g, r, px, f);
    if (g.k[1] == 3 && g.k[2] == 3 && g.s[2] == 1) return plainArgmaxes<T, 3, 3, 1>(g, r, px, f);
    return plainArgmaxes<T, 0, 0, 0>(g, r, px, f);
  }
  forEachWindow(g, r, [&](int64_t p, int64_t o, const AxisRange& r0, const AxisRange& r1, const AxisRange& r2) {
    T best;
    const int64_t idx = windowArgmax(g, px + p * g.inPlane, r0, r1, r2, best);
    f(p, o, idx, best);
  });
}

double avgDivisor(const AxisRange& r0, const AxisRange& r1, const AxisRange& r2, bool countIncludePad) {
  if (countIncludePad)
    return double(r0.padEnd - r0.start) * double(r1.padEnd - r1.start) * double(r2.padEnd - r2.start);
  return double(r0.jhi - r0.jlo) * double(r1.jhi - r1.jlo) * double(r2.jhi - r2.jlo);
}

void checkFloat(DType dt, const char* what) {
  if (!isFloat(dt)) invalid(std::string(what) + " does not accept " + dtypeName(dt));
}

int64_t bounded(int64_t v, int64_t lo, const char* name, size_t axis) {
  if (v < lo || v > kMaxElements)
    invalid(std::string("pool: ") + name + "[" + std::to_string(axis) + "] = " + std::to_string(v) + " is out of range");
  return v;
}
}  // namespace

PoolGeom planPool(const Shape& shape, const Shape& kernel, const Shape& strides, const Pads& pads,
                  const Shape& dilations, bool ceilMode) {
  const size_t sp = kernel.size();
  if (sp < 1 || sp > size_t(kAxes)) invalid("pool: kernel has " + std::to_string(sp) + " axes; 1 to 3 are supported");
  if (shape.size() != sp + 2)
    invalid("pool: x " + fmtShape(shape) + " must have rank " + std::to_string(sp + 2) + " (N, C and " +
            std::to_string(sp) + " spatial axes)");
  if (strides.size() != sp || pads.size() != sp || dilations.size() != sp)
    invalid("pool: strides, pads and dilations need one entry per spatial axis (" + std::to_string(sp) + ")");
  numel(shape, "pool input shape");
  PoolGeom g;
  const size_t lead = size_t(kAxes) - sp;
  for (size_t a = 0; a < size_t(kAxes); a++) {
    g.in[a] = g.out[a] = g.k[a] = g.s[a] = g.d[a] = 1;
    g.pb[a] = g.pa[a] = 0;
  }
  g.outShape = {shape[0], shape[1]};
  for (size_t i = 0; i < sp; i++) {
    const size_t a = lead + i;
    g.k[a] = bounded(kernel[i], 1, "kernel", i);
    g.s[a] = bounded(strides[i], 1, "strides", i);
    g.d[a] = bounded(dilations[i], 1, "dilations", i);
    g.pb[a] = bounded(pads[i].first, 0, "pads before", i);
    g.pa[a] = bounded(pads[i].second, 0, "pads after", i);
    g.in[a] = shape[2 + i];
    if (g.k[a] - 1 > kMaxElements / g.d[a]) invalid("pool: dilated kernel on axis " + std::to_string(i) + " is too large");
    const int64_t extent = (g.k[a] - 1) * g.d[a] + 1;
    const int64_t padded = g.in[a] + g.pb[a] + g.pa[a];
    if (padded < extent)
      invalid("pool: kernel extent " + std::to_string(extent) + " is larger than the padded input " +
              std::to_string(padded) + " on spatial axis " + std::to_string(i));
    const int64_t span = padded - extent;
    int64_t out = (ceilMode ? (span + g.s[a] - 1) / g.s[a] : span / g.s[a]) + 1;
    // ceil_mode: a last window that would start in the right padding is dropped
    if (ceilMode && (out - 1) * g.s[a] >= g.in[a] + g.pb[a]) out--;
    g.out[a] = out;
    g.outShape.push_back(out);
  }
  g.inPlane = g.in[0] * g.in[1] * g.in[2];
  g.outPlane = g.out[0] * g.out[1] * g.out[2];
  // N * C alone may overflow when a spatial size is 0; with no window at all there is nothing to loop over
  g.planes = numel(g.outShape, "pool output shape") == 0 ? 0 : shape[0] * shape[1];
  return g;
}

void checkPoolDtype(DType dt) { checkFloat(dt, "pooling"); }

void maxPool(const Arr& x, const PoolGeom& g, const Arr& out) {
  const Ranges r = windowRanges(g);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      T* po = out.as<T>();
      forEachArgmax(g, r, x.as<T>(), [&](int64_t p, int64_t o, int64_t, T best) { po[p * g.outPlane + o] = best; });
    }
  });
}

void maxPoolGather(const Arr& h, const Arr& x, const PoolGeom& g, const Arr& out) {
  const Ranges r = windowRanges(g);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      const T* ph = h.as<T>();
      T* po = out.as<T>();
      forEachArgmax(g, r, x.as<T>(), [&](int64_t p, int64_t o, int64_t idx, T) {
        po[p * g.outPlane + o] = idx < 0 ? T(0) : ph[p * g.inPlane + idx];
      });
    }
  });
}

void maxPoolScatter(const Arr& gr, const Arr& x, const PoolGeom& g, const Arr& out) {
  const Ranges r = windowRanges(g);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      const T* pg = gr.as<T>();
      T* po = out.as<T>();
      std::fill(po, po + out.n, T(0));
      forEachArgmax(g, r, x.as<T>(), [&](int64_t p, int64_t o, int64_t idx, T) {
        if (idx >= 0) po[p * g.inPlane + idx] += pg[p * g.outPlane + o];
      });
    }
  });
}

void avgPool(const Arr& x, const PoolGeom& g, bool countIncludePad, const Arr& out) {
  const Ranges r = windowRanges(g);
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      const T* px = x.as<T>();
      T* po = out.as<T>();
      forEachWindow(g, r, [&](int64_t p, int64_t o, const AxisRange& r0, const AxisRange& r1, const AxisRange& r2) {
        const T* xp = px + p * g.inPlane;
        double sum = 0;
        for (int64_t j0 = r0.jlo; j0 < r0.jhi; j0++) {
          const int64_t p0 = (r0.start + j0 * g.d[0]) * g.in[1];
          for (int64_t j1 = r1.jlo; j1 < r1.jhi; j1++) {
            const int64_t p1 = (p0 + r1.start + j1 * g.d[1]) * g.in[2];
            for (int64_t j2 = r2.jlo; j2 < r2.jhi; j2++) sum += double(xp[p1 + r2.start + j2 * g.d[2]]);
          }
        }
        po[p * g.outPlane + o] = T(sum / avgDivisor(r0, r1, r2, countIncludePad));
      });
    }
  });
}

void avgPoolBackward(const Arr& gr, const PoolGeom& g, bool countIncludePad, const Arr& out) {
  const Ranges r = windowRanges(g);
  dispatch(gr.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      const T* pg = gr.as<T>();
      T* po = out.as<T>();
      std::fill(po, po + out.n, T(0));
      forEachWindow(g, r, [&](int64_t p, int64_t o, const AxisRange& r0, const AxisRange& r1, const AxisRange& r2) {
        T* xp = po + p * g.inPlane;
        const T v = T(double(pg[p * g.outPlane + o]) / avgDivisor(r0, r1, r2, countIncludePad));
        for (int64_t j0 = r0.jlo; j0 < r0.jhi; j0++) {
          const int64_t p0 = (r0.start + j0 * g.d[0]) * g.in[1];
          for (int64_t j1 = r1.jlo; j1 < r1.jhi; j1++) {
            const int64_t p1 = (p0 + r1.start + j1 * g.d[1]) * g.in[2];
            for (int64_t j2 = r2.jlo; j2 < r2.jhi; j2++) xp[p1 + r2.start + j2 * g.d[2]] += v;
          }
        }
      });
    }
  });
}

}  // namespace gs
