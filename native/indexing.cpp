// gather / scatter-add / one_hot and casts between all datatypes.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels.h"

namespace gs {

namespace {
struct AxisSplit {
  int64_t outer = 1, A = 1, inner = 1;
};
AxisSplit splitAt(const Shape& shape, int64_t axis) {
  AxisSplit s;
  for (int64_t d = 0; d < axis; d++) s.outer *= shape[size_t(d)];
  s.A = shape[size_t(axis)];
  for (size_t d = size_t(axis) + 1; d < shape.size(); d++) s.inner *= shape[d];
  return s;
}

int64_t indexAt(const Arr& ind, int64_t i) {
  return ind.dt == DType::I32 ? int64_t(ind.as<int32_t>()[i]) : ind.as<int64_t>()[i];
}

// Normalizes every index (negative counts from the end) or throws INDEX_OUT_OF_RANGE naming it.
std::vector<int64_t> normalizedIndices(const char* /*what*/, const Arr& ind, int64_t A, int64_t axis) {
  std::vector<int64_t> out(size_t(ind.n));
  for (int64_t i = 0; i < ind.n; i++) {
    int64_t v = indexAt(ind, i);
    if (v < -A || v >= A)
      fail(ErrCode::IndexOutOfRange, "index " + std::to_string(v) +
                                         " is out of range for axis " + std::to_string(axis) + " of size " +
                                         std::to_string(A));
    out[size_t(i)] = v < 0 ? v + A : v;
  }
  return out;
}
}  // namespace

Shape planGather(const Shape& shape, const Shape& indShape, int64_t axis) {
  if (axis < 0 || axis >= int64_t(shape.size()))
    invalid("gather: axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(shape.size()));
  Shape out(shape.begin(), shape.begin() + axis);
  out.insert(out.end(), indShape.begin(), indShape.end());
  out.insert(out.end(), shape.begin() + axis + 1, shape.end());
  numel(out, "gather output shape");
  return out;
}

void gather(const Arr& x, const Shape& shape, const Arr& ind, const Shape& indShape, int64_t axis, const Arr& out) {
  (void)indShape;
  AxisSplit s = splitAt(shape, axis);
  std::vector<int64_t> idx = normalizedIndices("gather", ind, s.A, axis);
  const size_t es = dtypeSize(x.dt);
  const size_t row = size_t(s.inner) * es;
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(out.data);
  if (row == 0) return;
  for (int64_t o = 0; o < s.outer; o++)
    for (int64_t i = 0; i < ind.n; i++)
      std::memcpy(dst + size_t(o * ind.n + i) * row, src + size_t(o * s.A + idx[size_t(i)]) * row, row);
}

void checkGatherElements(const Shape& shape, const Shape& indShape, int64_t axis) {
  if (axis < 0 || axis >= int64_t(shape.size()))
    invalid("gatherElements: axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(shape.size()));
  if (indShape.size() != shape.size())
    invalid("gatherElements: indices " + fmtShape(indShape) + " must have the rank of x " + fmtShape(shape));
  for (size_t d = 0; d < shape.size(); d++)
    if (int64_t(d) != axis && indShape[d] > shape[d])
      invalid("gatherElements: indices " + fmtShape(indShape) + " exceed x " + fmtShape(shape) + " on axis " +
              std::to_string(d));
}

void gatherElements(const Arr& x, const Shape& shape, const Arr& ind, const Shape& indShape, int64_t axis,
                    bool allowNegative, const std::string& what, const Arr& out) {
  const size_t rank = shape.size();
  const int64_t A = shape[size_t(axis)];
  Shape xs = contiguousStrides(shape);
  std::vector<int64_t> pos(rank, 0);
  const size_t es = dtypeSize(x.dt);
  const char* src = static_cast<const char*>(x.data);
  char* dst = static_cast<char*>(out.data);
  int64_t base = 0;  // offset of pos in x without the axis term
  for (int64_t i = 0; i < ind.n; i++) {
    int64_t v = indexAt(ind, i);
    if (v < (allowNegative ? -A : 0) || v >= A)
      fail(ErrCode::IndexOutOfRange, what + " " + std::to_string(v) + " is out of range for axis " +
                                         std::to_string(axis) + " of size " + std::to_string(A));
    if (v < 0) v += A;
    std::memcpy(dst + size_t(i) * es, src + size_t(base + v * xs[size_t(axis)]) * es, es);
    for (size_t d = rank; d-- > 0;) {
      if (++pos[d] < indShape[d]) {
        if (int64_t(d) != axis) base += xs[d];
        break;
      }
      if (int64_t(d) != axis) base -= (pos[d] - 1) * xs[d];
      pos[d] = 0;
    }
  }
}

void checkScatterAdd(DType g, const Shape& gShape, const Shape& indShape, int64_t axis, const Shape& shape) {
  if (!isFloat(g)) invalid(std::string("scatterAdd does not accept ") + dtypeName(g));
  numel(shape, "scatterAdd shape");
  Shape expect = planGather(shape, indShape, axis);
  if (expect != gShape)
    invalid("scatterAdd: g has shape " + fmtShape(gShape) + " but gather's output shape is " + fmtShape(expect));
}

void scatterAdd(const Arr& g, const Arr& ind, const Shape& indShape, int64_t axis, const Shape& shape,
                const Arr& out) {
  (void)indShape;
  AxisSplit s = splitAt(shape, axis);
  std::vector<int64_t> idx = normalizedIndices("scatterAdd", ind, s.A, axis);
  dispatch(g.dt, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.as<T>();
    const T* pg = g.as<T>();
    std::fill(o, o + out.n, T(0));
    for (int64_t po = 0; po < s.outer; po++)
      for (int64_t i = 0; i < ind.n; i++) {
        T* d = o + (po * s.A + idx[size_t(i)]) * s.inner;
        const T* src = pg + (po * ind.n + i) * s.inner;
        for (int64_t c = 0; c < s.inner; c++) d[c] += src[c];
      }
  });
}

Shape planOneHot(const Shape& indShape, int64_t depth, int64_t axis) {
  if (depth < 0 || depth > kMaxElements) invalid("one_hot: depth " + std::to_string(depth) + " is invalid");
  if (axis < 0 || axis > int64_t(indShape.size()))
    invalid("one_hot: axis " + std::to_string(axis) + " is out of range for output rank " +
            std::to_string(indShape.size() + 1));
  Shape out = indShape;
  out.insert(out.begin() + axis, depth);
  numel(out, "one_hot output shape");
  return out;
}

void oneHot(const Arr& ind, const Shape& indShape, int64_t depth, int64_t axis, const Arr& out) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; d++) outer *= indShape[size_t(d)];
  for (size_t d = size_t(axis); d < indShape.size(); d++) inner *= indShape[d];
  dispatch(out.dt, [&](auto tag) {
    using T = decltype(tag);
    T* o = out.as<T>();
    std::fill(o, o + out.n, T(0));
    for (int64_t po = 0; po < outer; po++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t v = indexAt(ind, po * inner + i);
        if (v >= 0 && v < depth) o[(po * depth + v) * inner + i] = T(1);
      }
  });
}

namespace {
template <typename To, typename From> To castOne(From v) {
  if constexpr (std::is_same<To, uint8_t>::value) {
    return To(v != From(0));  // BOOL: any non-zero (and NaN) is true
  } else if constexpr (std::is_same<From, uint8_t>::value) {
    return To(v != 0 ? 1 : 0);
  } else if constexpr (kIsFloat<From> && std::is_integral<To>::value) {
    From t = std::trunc(v);
    // -2^(bits-1) and 2^(bits-1) are exact in both float types, so these bounds are exact.
    const From lo = -std::ldexp(From(1), int(sizeof(To) * 8 - 1)), hi = -lo;
    if (!(t >= lo && t < hi))
      fail(ErrCode::InvalidCast, "cannot cast " + std::to_string(double(v)) + " to " +
                                     (sizeof(To) == 4 ? "INT32" : "INT64"));
    return To(t);
  } else if constexpr (std::is_integral<From>::value && std::is_integral<To>::value && sizeof(To) < sizeof(From)) {
    if (v < From(std::numeric_limits<To>::lowest()) || v > From(std::numeric_limits<To>::max()))
      fail(ErrCode::InvalidCast, "cannot cast " + std::to_string(v) + " to INT32");
    return To(v);
  } else {
    return To(v);
  }
}
}  // namespace

void cast(const Arr& x, const Arr& out) {
  dispatch(x.dt, [&](auto ftag) {
    using From = decltype(ftag);
    dispatch(out.dt, [&](auto ttag) {
      using To = decltype(ttag);
      const From* s = x.as<From>();
      To* d = out.as<To>();
      if constexpr (std::is_same<From, To>::value) {
        if (x.n) std::memcpy(d, s, size_t(x.n) * sizeof(To));
      } else {
        for (int64_t i = 0; i < x.n; i++) d[i] = castOne<To, From>(s[i]);
      }
    });
  });
}

}  // namespace gs
