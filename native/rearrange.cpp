// Rearranging and scattering: roll (a strided copy in two runs per row), the triangle mask of triu/tril, and the
// element-wise scatter-add of ONNX ScatterElements (reduction add), which is also the gradient of GatherElements.
#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace gs {

namespace {
int64_t indexAt(const Arr& ind, int64_t i) {
  return ind.dt == DType::I32 ? int64_t(ind.as<int32_t>()[i]) : ind.as<int64_t>()[i];
}
}  // namespace

Shape planRoll(const Shape& shape, const std::vector<int64_t>& shifts) {
  if (shifts.size() != shape.size())
    invalid("roll: shifts has " + std::to_string(shifts.size()) + " entries for a tensor of rank " +
            std::to_string(shape.size()) + "; give one per axis");
  numel(shape, "roll shape");
  return shape;
}

void roll(const Arr& x, const Shape& shape, const std::vector<int64_t>& shifts, const Arr& out) {
  const size_t es = dtypeSize(x.dt);
  if (out.n == 0) return;
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(out.data);
  const size_t r = shape.size();
  std::vector<int64_t> s(r, 0);
  int64_t last = -1;  // the last axis that moves: everything after it is one contiguous unit
  for (size_t k = 0; k < r; k++) {
    const int64_t d = shape[k];
    s[k] = ((shifts[k] % d) + d) % d;
    if (s[k] != 0) last = int64_t(k);
  }
  if (last < 0) {
    std::memcpy(dst, src, size_t(out.n) * es);
    return;
  }
  const size_t L = size_t(last);
  int64_t inner = 1;
  for (size_t k = L + 1; k < r; k++) inner *= shape[k];
  const int64_t A = shape[L], sL = s[L];
  const size_t unit = size_t(inner) * es;
  Shape cs = contiguousStrides(shape);
  int64_t rows = 1;
  for (size_t k = 0; k < L; k++) rows *= shape[k];
  std::vector<int64_t> pos(L, 0);
  for (int64_t row = 0; row < rows; row++) {
    // output position pos reads input position pos - shift (mod size) on every axis before L
    int64_t from = 0;
    for (size_t k = 0; k < L; k++) {
      int64_t p = pos[k] - s[k];
      if (p < 0) p += shape[k];
      from += p * cs[k];
    }
    char* d = dst + size_t(row * A) * unit;
    const char* f = src + size_t(from) * es;
    std::memcpy(d + size_t(sL) * unit, f, size_t(A - sL) * unit);
    std::memcpy(d, f + size_t(A - sL) * unit, size_t(sL) * unit);
    for (size_t k = L; k-- > 0;) {
      if (++pos[k] < shape[k]) break;
      pos[k] = 0;
    }
  }
}

void checkTriangle(const Shape& shape) {
  if (shape.size() < 2) invalid("triangle: x " + fmtShape(shape) + " needs at least two axes");
  numel(shape, "triangle shape");
}

void triangle(const Arr& x, const Shape& shape, int64_t k, bool upper, const Arr& out) {
  const size_t r = shape.size();
  const int64_t R = shape[r - 2], C = shape[r - 1];
  if (out.n == 0) return;
  const int64_t mats = out.n / (R * C);
  const size_t es = dtypeSize(x.dt);
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(out.data);
  for (int64_t m = 0; m < mats; m++)
    for (int64_t i = 0; i < R; i++) {
      // kept columns [lo, hi): j - i >= k (upper) or j - i <= k (lower); |k| < 2^53 and i < 2^48, so no overflow
      const int64_t lo = upper ? std::clamp<int64_t>(i + k, 0, C) : 0;
      const int64_t hi = upper ? C : std::clamp<int64_t>(i + k + 1, 0, C);
      const size_t row = size_t((m * R + i) * C);
      // zero bits are 0 in every datatype (0.0, 0, false)
      std::memset(dst + row * es, 0, size_t(lo) * es);
      std::memcpy(dst + (row + size_t(lo)) * es, src + (row + size_t(lo)) * es, size_t(hi - lo) * es);
      std::memset(dst + (row + size_t(hi)) * es, 0, size_t(C - hi) * es);
    }
}

void checkScatterAddElements(bool hasBase, DType base, const Shape& shape, const Shape& indShape, DType upd,
                             int64_t axis) {
  if (upd == DType::BOOL) invalid("scatterAddElements does not accept BOOL updates");
  if (hasBase && base != upd)
    invalid(std::string("scatterAddElements: x is ") + dtypeName(base) + " but updates are " + dtypeName(upd));
  numel(shape, "scatterAddElements shape");
  if (axis < 0 || axis >= int64_t(shape.size()))
    invalid("scatterAddElements: axis " + std::to_string(axis) + " is out of range for rank " +
            std::to_string(shape.size()));
  if (indShape.size() != shape.size())
    invalid("scatterAddElements: indices " + fmtShape(indShape) + " must have the rank of x " + fmtShape(shape));
  for (size_t d = 0; d < shape.size(); d++)
    if (int64_t(d) != axis && indShape[d] > shape[d])
      invalid("scatterAddElements: indices " + fmtShape(indShape) + " exceed x " + fmtShape(shape) + " on axis " +
              std::to_string(d));
}

void scatterAddElements(const Arr& x, bool hasBase, const Shape& shape, const Arr& ind, const Shape& indShape,
                        const Arr& upd, int64_t axis, const Arr& out) {
  const size_t rank = shape.size();
  const int64_t A = shape[size_t(axis)];
  const Shape xs = contiguousStrides(shape);
  dispatch(upd.dt, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.as<T>();
    const T* u = upd.as<T>();
    if (hasBase) {
      if (out.n) std::memcpy(o, x.data, size_t(out.n) * sizeof(T));
    } else {
      std::fill(o, o + out.n, T(0));
    }
    std::vector<int64_t> pos(rank, 0);
    int64_t base = 0;  // offset of pos in x without the axis term
    for (int64_t i = 0; i < ind.n; i++) {
      int64_t v = indexAt(ind, i);
      if (v < -A || v >= A)
        fail(ErrCode::IndexOutOfRange, "index " + std::to_string(v) + " is out of range for axis " +
                                           std::to_string(axis) + " of size " + std::to_string(A));
      if (v < 0) v += A;
      o[base + v * xs[size_t(axis)]] += u[i];
      for (size_t d = rank; d-- > 0;) {
        if (++pos[d] < indShape[d]) {
          if (int64_t(d) != axis) base += xs[d];
          break;
        }
        if (int64_t(d) != axis) base -= (pos[d] - 1) * xs[d];
        pos[d] = 0;
      }
    }
  });
}

}  // namespace gs
