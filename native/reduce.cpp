// Reductions, arg-reductions and the softmax family. Sums and means read x in place whatever the axes
// (reduceByRuns); the other reductions move the reduced axes last (one cache-blocked transpose when they are not
// already trailing), so every reduction is a loop over contiguous rows.
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>

#include "kernels.h"
#include "reduce_rows.h"

namespace gs {

bool parseReduceOp(const std::string& s, ReduceOp& op) { return parseOpName(s, kReduceOps, op); }
bool parseArgReduceOp(const std::string& s, ArgReduceOp& op) { return parseOpName(s, kArgReduceOps, op); }

Shape planReduce(ReduceOp op, DType dt, const Shape& shape, const std::vector<int64_t>& axes) {
  if (dt == DType::BOOL || (opInfo(op).fpOnly && !isFloat(dt)))
    invalid(std::string("reduce does not accept ") + dtypeName(dt) + " for this op");
  const int64_t rank = int64_t(shape.size());
  Shape out;
  size_t j = 0;
  for (size_t i = 0; i < axes.size(); i++) {
    if (axes[i] < 0 || axes[i] >= rank) invalid("reduce: axis " + std::to_string(axes[i]) + " is out of range for rank " + std::to_string(rank));
    if (i > 0 && axes[i] <= axes[i - 1]) invalid("reduce: axes must be sorted and unique");
  }
  for (int64_t d = 0; d < rank; d++) {
    if (j < axes.size() && axes[j] == d) {
      if (shape[d] == 0 && !opInfo(op).identity)
        invalid("reduce: max/min over a zero-size axis " + std::to_string(d) + " of " + fmtShape(shape));
      j++;
    } else {
      out.push_back(shape[d]);
    }
  }
  return out;
}

void reduce(ReduceOp op, const Arr& x, const Shape& shape, const std::vector<int64_t>& axes, const Arr& out) {
  const int64_t rank = int64_t(shape.size());
  std::vector<int64_t> perm;
  std::vector<bool> red(shape.size(), false);
  for (int64_t a : axes) red[size_t(a)] = true;
  int64_t outer = 1, R = 1;
  for (int64_t d = 0; d < rank; d++)
    if (!red[size_t(d)]) { perm.push_back(d); outer *= shape[size_t(d)]; }
  for (int64_t d = 0; d < rank; d++)
    if (red[size_t(d)]) { perm.push_back(d); R *= shape[size_t(d)]; }
  bool identity = true;
  for (int64_t d = 0; d < rank; d++) identity = identity && perm[size_t(d)] == d;

  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same<T, uint8_t>::value) {
      const T* src = x.as<T>();
      std::unique_ptr<T[]> tmp;
      if (!identity && outer > 1 && R > 1) {
        // Sums and means avoid the transpose: contiguous rows are summed, or added into output rows, in place.
        if (reduceByRuns<T>(op, src, shape, red, out.as<T>())) return;
        tmp.reset(new T[size_t(x.n)]);
        Arr t{x.dt, tmp.get(), x.n};
        transpose(x, shape, perm, t);
        src = tmp.get();
      }
      T* o = out.as<T>();
      if constexpr (kIsFloat<T>) {
        if (op == ReduceOp::LogSumExp && R > 0) return logSumExpRows(src, outer, R, o);
      }
      for (int64_t i = 0; i < outer; i++) o[i] = reduceRow<T>(op, src + i * R, R);
    }
  });
}

Shape planArgReduce(DType dt, const Shape& shape, int64_t axis) {
  (void)dt;
  if (axis < 0) {
    if (numel(shape) == 0) invalid("argmax/argmin of an empty tensor");
    return {};
  }
  if (axis >= int64_t(shape.size()))
    invalid("argmax/argmin: axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(shape.size()));
  if (shape[size_t(axis)] == 0) invalid("argmax/argmin over a zero-size axis");
  Shape out;
  for (size_t d = 0; d < shape.size(); d++)
    if (int64_t(d) != axis) out.push_back(shape[d]);
  return out;
}

void argReduce(bool isMax, const Arr& x, const Shape& shape, int64_t axis, const Arr& out) {
  int64_t outer = 1, A = x.n, inner = 1;
  if (axis >= 0) {
    A = shape[size_t(axis)];
    outer = 1;
    for (int64_t d = 0; d < axis; d++) outer *= shape[size_t(d)];
    for (size_t d = size_t(axis) + 1; d < shape.size(); d++) inner *= shape[d];
  }
  int64_t* o = out.as<int64_t>();
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.as<T>();
    for (int64_t po = 0; po < outer; po++)
      for (int64_t pi = 0; pi < inner; pi++) {
        const T* row = px + po * A * inner + pi;
        int64_t best = 0;
        T bv = row[0];
        if constexpr (kIsFloat<T>) {
          if (bv != bv) { o[po * inner + pi] = 0; continue; }
        }
        for (int64_t a = 1; a < A; a++) {
          T v = row[a * inner];
          if constexpr (kIsFloat<T>) {
            if (v != v) { best = a; break; }  // the first NaN wins, as in NumPy
          }
          if (isMax ? v > bv : v < bv) { bv = v; best = a; }
        }
        o[po * inner + pi] = best;
      }
  });
}

void checkSoftmax(DType dt, const Shape& shape, int64_t axis) {
  if (!isFloat(dt)) invalid(std::string("softmax does not accept ") + dtypeName(dt));
  if (axis < 0 || axis >= int64_t(shape.size()))
    invalid("softmax: axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(shape.size()));
}

void softmax(const Arr& x, const Shape& shape, int64_t axis, bool log, const Arr& out) {
  int64_t outer = 1, A = shape[size_t(axis)], inner = 1;
  for (int64_t d = 0; d < axis; d++) outer *= shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < shape.size(); d++) inner *= shape[d];
  if (x.n == 0) return;
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (kIsFloat<T>) {
      for (int64_t po = 0; po < outer; po++)
        for (int64_t pi = 0; pi < inner; pi++) {
          const int64_t base = po * A * inner + pi;
          softmaxRow<T>(x.as<T>() + base, out.as<T>() + base, A, inner, log);
        }
    }
  });
}

}  // namespace gs
