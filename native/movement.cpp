// Data movement: transpose, broadcast_to, slice (and its backward), pad and concat. All are one strided copy after
// the shapes are checked; the element type only matters for its size.
#include <algorithm>
#include <limits>

#include "kernels.h"
#include "strided.h"
#include "transpose_blocked.h"

namespace gs {

void copyStrided(size_t elemSize, const void* src, const Shape& shape, const Shape& ss, void* dst, const Shape& ds) {
  switch (elemSize) {
    case 1: return copyStridedT(static_cast<const uint8_t*>(src), shape, ss, static_cast<uint8_t*>(dst), ds);
    case 4: return copyStridedT(static_cast<const uint32_t*>(src), shape, ss, static_cast<uint32_t*>(dst), ds);
    default: return copyStridedT(static_cast<const uint64_t*>(src), shape, ss, static_cast<uint64_t*>(dst), ds);
  }
}

Shape planTranspose(const Shape& shape, const std::vector<int64_t>& perm) {
  if (perm.size() != shape.size())
    invalid("transpose: perm has " + std::to_string(perm.size()) + " axes for a tensor of rank " +
            std::to_string(shape.size()));
  std::vector<bool> seen(shape.size(), false);
  Shape out;
  for (int64_t p : perm) {
    if (p < 0 || p >= int64_t(shape.size()) || seen[size_t(p)]) invalid("transpose: perm is not a permutation");
    seen[size_t(p)] = true;
    out.push_back(shape[size_t(p)]);
  }
  return out;
}

void transpose(const Arr& x, const Shape& shape, const std::vector<int64_t>& perm, const Arr& out) {
  Shape outShape, ss;
  Shape cs = contiguousStrides(shape);
  for (int64_t p : perm) {
    outShape.push_back(shape[size_t(p)]);
    ss.push_back(cs[size_t(p)]);
  }
  Shape ds = contiguousStrides(outShape);
  collapseDims(outShape, {&ss, &ds});
  const size_t es = dtypeSize(x.dt);
  if (transposeBlocked(es, x.data, outShape, ss, out.data, ds)) return;
  copyStrided(es, x.data, outShape, ss, out.data, ds);
}

void checkBroadcastTo(const Shape& shape, const Shape& outShape) {
  numel(outShape, "broadcast_to shape");
  bool ok = shape.size() <= outShape.size();
  for (size_t i = 0; ok && i < shape.size(); i++) {
    int64_t d = shape[i], o = outShape[outShape.size() - shape.size() + i];
    ok = d == o || d == 1;
  }
  if (!ok) invalid("broadcast_to: cannot broadcast " + fmtShape(shape) + " to " + fmtShape(outShape));
}

void broadcastTo(const Arr& x, const Shape& shape, const Shape& outShape, const Arr& out) {
  copyStrided(dtypeSize(x.dt), x.data, outShape, broadcastStrides(shape, outShape), out.data,
              contiguousStrides(outShape));
}

void checkSlice(const Shape& shape, const Shape& starts, const Shape& steps, const Shape& outShape) {
  const size_t r = shape.size();
  if (starts.size() != r || steps.size() != r || outShape.size() != r)
    invalid("slice: starts, steps and outShape need one entry per axis of " + fmtShape(shape));
  numel(outShape, "slice output shape");
  for (size_t k = 0; k < r; k++) {
    if (steps[k] == 0) invalid("slice: step 0 on axis " + std::to_string(k));
    if (outShape[k] == 0) continue;
    // Both the first and the last index read must lie inside the axis (no overflow: all are < 2^53).
    __int128 first = starts[k], last = __int128(starts[k]) + __int128(outShape[k] - 1) * steps[k];
    if (first < 0 || first >= shape[k] || last < 0 || last >= shape[k])
      invalid("slice: axis " + std::to_string(k) + " of size " + std::to_string(shape[k]) + " cannot read " +
              std::to_string(outShape[k]) + " elements from " + std::to_string(starts[k]) + " with step " +
              std::to_string(steps[k]));
  }
}

namespace {
// Input offset and strides that the slice reads through.
int64_t sliceView(const Shape& shape, const Shape& starts, const Shape& steps, const Shape& outShape, Shape& st) {
  Shape cs = contiguousStrides(shape);
  int64_t off = 0;
  st.assign(shape.size(), 0);
  for (size_t k = 0; k < shape.size(); k++) {
    if (outShape[k] == 0) return 0;
    off += starts[k] * cs[k];
    st[k] = steps[k] * cs[k];
  }
  return off;
}
}  // namespace

void slice(const Arr& x, const Shape& shape, const Shape& starts, const Shape& steps, const Shape& outShape,
           const Arr& out) {
  Shape st;
  int64_t off = sliceView(shape, starts, steps, outShape, st);
  if (out.n == 0) return;
  const size_t es = dtypeSize(x.dt);
  copyStrided(es, static_cast<const char*>(x.data) + off * int64_t(es), outShape, st, out.data,
              contiguousStrides(outShape));
}

void sliceBackward(const Arr& g, const Shape& outShape, const Shape& starts, const Shape& steps, const Shape& shape,
                   const Arr& out) {
  const size_t es = dtypeSize(g.dt);
  if (out.n == 0) return;  // an empty typed array may have no data pointer at all (memset(nullptr) is undefined)
  std::memset(out.data, 0, size_t(out.n) * es);
  Shape st;
  int64_t off = sliceView(shape, starts, steps, outShape, st);
  if (g.n == 0) return;
  // Sliced positions are distinct (steps are non-zero), so scattering g is a plain strided copy.
  copyStrided(es, g.data, outShape, contiguousStrides(outShape), static_cast<char*>(out.data) + off * int64_t(es), st);
}

Shape planPad(const Shape& shape, const Pads& pads) {
  if (pads.size() != shape.size())
    invalid("pad: pads has " + std::to_string(pads.size()) + " entries for a tensor of rank " +
            std::to_string(shape.size()));
  Shape out;
  for (size_t k = 0; k < shape.size(); k++) {
    if (pads[k].first < 0 || pads[k].second < 0) invalid("pad: pads must be non-negative");
    if (pads[k].first > kMaxElements || pads[k].second > kMaxElements) invalid("pad: pads are too large");
    out.push_back(shape[k] + pads[k].first + pads[k].second);
  }
  numel(out, "pad output shape");
  return out;
}

void pad(const Arr& x, const Shape& shape, const Pads& pads, double value, const Arr& out) {
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    T v;
    if constexpr (std::is_same<T, uint8_t>::value) v = value != 0;
    else if constexpr (kIsFloat<T>) v = T(value);
    else v = value != value ? T(0) : value <= double(std::numeric_limits<T>::lowest()) ? std::numeric_limits<T>::lowest()
         : value >= double(std::numeric_limits<T>::max()) ? std::numeric_limits<T>::max() : T(value);
    std::fill(out.as<T>(), out.as<T>() + out.n, v);
  });
  if (x.n == 0) return;
  Shape outShape = planPad(shape, pads);
  Shape ds = contiguousStrides(outShape);
  int64_t off = 0;
  for (size_t k = 0; k < shape.size(); k++) off += pads[k].first * ds[k];
  const size_t es = dtypeSize(x.dt);
  copyStrided(es, x.data, shape, contiguousStrides(shape), static_cast<char*>(out.data) + off * int64_t(es), ds);
}

Shape planConcat(const std::vector<DType>& dts, const std::vector<Shape>& shapes, int64_t axis) {
  if (shapes.empty()) invalid("concat needs at least one input");
  if (dts.size() != shapes.size()) invalid("concat: one shape per input is needed");
  const Shape& s0 = shapes[0];
  if (axis < 0 || axis >= int64_t(s0.size()))
    invalid("concat: axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(s0.size()));
  Shape out = s0;
  out[size_t(axis)] = 0;
  for (size_t i = 0; i < shapes.size(); i++) {
    if (dts[i] != dts[0]) invalid(std::string("concat: inputs are ") + dtypeName(dts[0]) + " and " + dtypeName(dts[i]));
    const Shape& s = shapes[i];
    bool ok = s.size() == s0.size();
    for (size_t d = 0; ok && d < s.size(); d++) ok = int64_t(d) == axis || s[d] == s0[d];
    if (!ok) invalid("concat: shapes " + fmtShape(s0) + " and " + fmtShape(s) + " differ off axis " + std::to_string(axis));
    if (s[size_t(axis)] > kMaxElements) invalid("concat: shape is too large");
    out[size_t(axis)] += s[size_t(axis)];
  }
  numel(out, "concat output shape");
  return out;
}

void concat(const std::vector<Arr>& xs, const std::vector<Shape>& shapes, int64_t axis, const Arr& out) {
  const size_t es = dtypeSize(out.dt);
  int64_t outer = 1, inner = 1, total = 0;
  for (int64_t d = 0; d < axis; d++) outer *= shapes[0][size_t(d)];
  for (size_t d = size_t(axis) + 1; d < shapes[0].size(); d++) inner *= shapes[0][d];
  for (const Shape& s : shapes) total += s[size_t(axis)];
  const int64_t rowOut = total * inner * int64_t(es);
  char* o = static_cast<char*>(out.data);
  int64_t col = 0;
  for (size_t i = 0; i < xs.size(); i++) {
    const int64_t row = shapes[i][size_t(axis)] * inner * int64_t(es);
    const char* src = static_cast<const char*>(xs[i].data);
    if (row > 0)
      for (int64_t r = 0; r < outer; r++) std::memcpy(o + r * rowOut + col, src + r * row, size_t(row));
    col += row;
  }
}

}  // namespace gs
