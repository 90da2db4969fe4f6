// Broadcasting binary ops (the list: GS_BINARY_OPS in op_tables.h), where and clip. Shapes are collapsed first, so same-shape operands become one contiguous
// run and scalar / trailing-broadcast operands become a zero inner stride; the row kernels specialise those cases.
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels.h"
#include "strided.h"
#include "vecmath.h"

namespace gs {

namespace {
template <typename T> using U = std::make_unsigned_t<T>;

template <typename T> T intDiv(T a, T b) {
  if (b == 0) return 0;  // ONNX: integer x / 0 gives 0
  if (b == -1) return T(U<T>(0) - U<T>(a));  // avoids the INT_MIN / -1 trap
  return a / b;
}

template <typename T> T intPow(T base, T e) {
  if (e < 0) return base == 1 ? T(1) : base == -1 ? ((e & 1) ? T(-1) : T(1)) : T(0);
  U<T> r = 1, b = U<T>(base);
  for (auto ue = U<T>(e); ue; ue >>= 1) {
    if (ue & 1) r *= b;
    b *= b;
  }
  return T(r);
}

template <typename T> inline T addW(T a, T b) {
  if constexpr (std::is_integral<T>::value) return T(U<T>(a) + U<T>(b)); else return a + b;
}
template <typename T> inline T subW(T a, T b) {
  if constexpr (std::is_integral<T>::value) return T(U<T>(a) - U<T>(b)); else return a - b;
}
template <typename T> inline T mulW(T a, T b) {
  if constexpr (std::is_integral<T>::value) return T(U<T>(a) * U<T>(b)); else return a * b;
}
template <typename T> inline T divT(T a, T b) {
  if constexpr (std::is_integral<T>::value) return intDiv(a, b); else return a / b;
}
template <typename T> inline T powT(T a, T b) {
  if constexpr (std::is_integral<T>::value) return intPow(a, b); else return std::pow(a, b);
}
template <typename T> inline T maxT(T a, T b) {
  if constexpr (kIsFloat<T>) { if (a != a) return a; if (b != b) return b; }
  return a > b ? a : b;
}
template <typename T> inline T minT(T a, T b) {
  if constexpr (kIsFloat<T>) { if (a != a) return a; if (b != b) return b; }
  return a < b ? a : b;
}
template <typename T> inline T mulNoNan(T a, T b) {
  if constexpr (kIsFloat<T>) return a == T(0) ? T(0) : a * b; else return mulW(a, b);
}

// mod (floor: the result has the divisor's sign, as NumPy/Python) and fmod (trunc: the dividend's sign, as C).
// Integers: x mod 0 = 0 (NumPy's result; ONNX leaves it undefined), and a divisor of -1 gives 0 without the
// INT_MIN % -1 trap. Floats: a zero remainder of `mod` takes the divisor's sign (NumPy), x mod 0 is NaN.
template <bool FLOOR, typename T> inline T modT(T a, T b) {
  if constexpr (kIsFloat<T>) {
    T r = std::fmod(a, b);
    if (!FLOOR) return r;
    if (r == T(0)) return std::copysign(T(0), b);
    return (r < 0) != (b < 0) ? r + b : r;
  } else {
    if (b == 0 || b == T(-1)) return T(0);
    T r = T(a % b);
    if (FLOOR && r != 0 && ((r < 0) != (b < 0))) r = T(r + b);  // |r| < |b| with opposite signs: cannot overflow
    return r;
  }
}
// log(e^a + e^b) = max + log1p(e^-|a - b|); equal operands (the infinities among them) give a + log 2 directly, so
// -Inf with -Inf is -Inf and Inf with Inf is Inf rather than Inf - Inf = NaN. NaN propagates.
template <typename T> inline T logAddExp(T a, T b) {
  if constexpr (kIsFloat<T>) {
    if (a == b) return a + T(0.69314718055994530942);
    T m = a > b ? a : b;
    return m + std::log1p(std::exp(-std::fabs(a - b)));
  } else {
    return a;  // FP only (planBinary refuses integers)
  }
}
// The FP-only functions of libm, instantiated (never run) for integers too.
template <typename T> inline T atan2T(T a, T b) {
  if constexpr (kIsFloat<T>) return std::atan2(a, b); else return a;
}
template <typename T> inline T hypotT(T a, T b) {
  if constexpr (kIsFloat<T>) return std::hypot(a, b); else return a;
}
// The scalar definition of each op of the table: a functor Op<Enum>, so every row loop is a separate, vectorisable
// instantiation. An op of the table without its functor does not compile.
#define GS_BIN(E, EXPR)                                                   \
  struct Op##E {                                                          \
    template <typename T> static inline auto f(T a, T b) { return EXPR; } \
  };
GS_BIN(Add, addW(a, b))
GS_BIN(Sub, subW(a, b))
GS_BIN(Mul, mulW(a, b))
GS_BIN(Div, divT(a, b))
GS_BIN(Pow, powT(a, b))
GS_BIN(Maximum, maxT(a, b))
GS_BIN(Minimum, minT(a, b))
GS_BIN(Equal, uint8_t(a == b))
GS_BIN(NotEqual, uint8_t(a != b))
GS_BIN(Less, uint8_t(a < b))
GS_BIN(LessEqual, uint8_t(a <= b))
GS_BIN(Greater, uint8_t(a > b))
GS_BIN(GreaterEqual, uint8_t(a >= b))
GS_BIN(MulNoNan, mulNoNan(a, b))
GS_BIN(Atan2, atan2T(a, b))
GS_BIN(Mod, (modT<true>(a, b)))
GS_BIN(Fmod, (modT<false>(a, b)))
GS_BIN(LogAddExp, logAddExp(a, b))
GS_BIN(Hypot, hypotT(a, b))
GS_BIN(LogicalAnd, uint8_t(a != T(0) && b != T(0)))
GS_BIN(LogicalOr, uint8_t(a != T(0) || b != T(0)))
GS_BIN(LogicalXor, uint8_t((a != T(0)) != (b != T(0))))
#undef GS_BIN

template <BinaryOp OP, typename Op, typename T, typename R>
inline void binaryRow(const T* pa, int64_t sa, const T* pb, int64_t sb, R* po, int64_t so, int64_t n) {
  if constexpr (opInfo(OP).simd && std::is_same<T, R>::value) {
    if (so == 1 && n >= 64) {
      if constexpr (std::is_same<T, float>::value) {
        if (vecBinaryF32(OP, pa, sa, pb, sb, po, n)) return;
      } else if constexpr (std::is_same<T, double>::value) {
        if (vecBinaryF64(OP, pa, sa, pb, sb, po, n)) return;
      }
    }
  }
  if (sa == 1 && sb == 1 && so == 1) {
    for (int64_t i = 0; i < n; i++) po[i] = R(Op::f(pa[i], pb[i]));
  } else if (sa == 0 && sb == 1 && so == 1) {
    const T va = *pa;
    for (int64_t i = 0; i < n; i++) po[i] = R(Op::f(va, pb[i]));
  } else if (sa == 1 && sb == 0 && so == 1) {
    const T vb = *pb;
    for (int64_t i = 0; i < n; i++) po[i] = R(Op::f(pa[i], vb));
  } else {
    for (int64_t i = 0; i < n; i++) po[i * so] = R(Op::f(pa[i * sa], pb[i * sb]));
  }
}

inline int64_t product(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

template <BinaryOp OP, typename Op, typename T, typename R>
void binaryRows(const T* a, const Shape& as, const T* b, const Shape& bs, const Shape& outShape, R* o) {
  // Same-shape and scalar operands skip the stride machinery entirely (they are most calls, and tiny calls are
  // dominated by its allocations otherwise).
  const int64_t na = product(as), nb = product(bs), no = product(outShape);
  if (no == 0) return;
  if (na == no && nb == no) return binaryRow<OP, Op>(a, 1, b, 1, o, 1, no);
  if (na == 1 && nb == no) return binaryRow<OP, Op>(a, 0, b, 1, o, 1, no);
  if (nb == 1 && na == no) return binaryRow<OP, Op>(a, 1, b, 0, o, 1, no);
  Shape shape = outShape, sa = broadcastStrides(as, outShape), sb = broadcastStrides(bs, outShape),
        so = contiguousStrides(outShape);
  collapseDims(shape, {&sa, &sb, &so});
  forEachRow<3>(shape, {&sa, &sb, &so}, [&](const std::array<int64_t, 3>& off, int64_t n,
                                             const std::array<int64_t, 3>& st) {
    binaryRow<OP, Op>(a + off[0], st[0], b + off[1], st[1], o + off[2], st[2], n);
  });
}

template <typename T>
void binaryT(BinaryOp op, const T* a, const Shape& as, const T* b, const Shape& bs, const Shape& os, void* out) {
  T* o = static_cast<T*>(out);
  uint8_t* ob = static_cast<uint8_t*>(out);
  switch (op) {
    // comparisons and logical ops (kind Cmp) write BOOL (uint8_t) outputs
#define GS_BIN_CASE(E, N, KIND, SIMD)                                                          \
  case BinaryOp::E:                                                                            \
    if constexpr (BinaryKind::KIND == BinaryKind::Cmp) return binaryRows<BinaryOp::E, Op##E>(a, as, b, bs, os, ob); \
    else return binaryRows<BinaryOp::E, Op##E>(a, as, b, bs, os, o);
    GS_BINARY_OPS(GS_BIN_CASE)
#undef GS_BIN_CASE
  }
}
}  // namespace

bool parseBinaryOp(const std::string& s, BinaryOp& op) { return parseOpName(s, kBinaryOps, op); }

BinaryPlan planBinary(BinaryOp op, DType a, const Shape& as, DType b, const Shape& bs) {
  const BinaryInfo& info = opInfo(op);
  if (a != b) invalid(std::string(info.name) + ": operands are " + dtypeName(a) + " and " + dtypeName(b));
  const bool cmp = info.kind == BinaryKind::Cmp;
  if ((a == DType::BOOL && !cmp) || (info.kind == BinaryKind::Fp && !isFloat(a)))
    invalid(std::string(info.name) + " does not accept " + dtypeName(a));
  BinaryPlan p;
  p.out = broadcastShapes({&as, &bs});
  numel(p.out, "broadcast shape");
  p.outDt = cmp ? DType::BOOL : a;
  return p;
}

void binary(BinaryOp op, const Arr& a, const Shape& as, const Arr& b, const Shape& bs, const Shape& outShape,
            const Arr& out) {
  dispatch(a.dt, [&](auto tag) {
    using T = decltype(tag);
    binaryT<T>(op, a.as<T>(), as, b.as<T>(), bs, outShape, out.data);
  });
}

Shape planWhere(const Shape& cs, DType a, const Shape& as, DType b, const Shape& bs) {
  if (a != b) invalid(std::string("where: branches are ") + dtypeName(a) + " and " + dtypeName(b));
  Shape out = broadcastShapes({&cs, &as, &bs});
  numel(out, "broadcast shape");
  return out;
}

void where(const Arr& cond, const Shape& cs, const Arr& a, const Shape& as, const Arr& b, const Shape& bs,
           const Shape& outShape, const Arr& out) {
  dispatch(a.dt, [&](auto tag) {
    using T = decltype(tag);
    const uint8_t* c = cond.as<uint8_t>();
    const T* pa = a.as<T>();
    const T* pb = b.as<T>();
    T* po = out.as<T>();
    Shape shape = outShape, sc = broadcastStrides(cs, outShape), sa = broadcastStrides(as, outShape),
          sb = broadcastStrides(bs, outShape), so = contiguousStrides(outShape);
    collapseDims(shape, {&sc, &sa, &sb, &so});
    forEachRow<4>(shape, {&sc, &sa, &sb, &so}, [&](const std::array<int64_t, 4>& off, int64_t n,
                                                    const std::array<int64_t, 4>& st) {
      for (int64_t i = 0; i < n; i++)
        po[off[3] + i * st[3]] = c[off[0] + i * st[0]] ? pa[off[1] + i * st[1]] : pb[off[2] + i * st[2]];
    });
  });
}

void checkClip(DType dt, const ClipBounds& b) {
  if (dt == DType::BOOL) invalid("clip does not accept BOOL");
  if ((b.hasMin && std::isnan(b.min)) || (b.hasMax && std::isnan(b.max))) invalid("clip: a bound is NaN");
  if (b.hasMin && b.hasMax && b.min > b.max) invalid("clip: min is greater than max");
}

void clip(const Arr& x, const ClipBounds& b, const Arr& out) {
  dispatch(x.dt, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.as<T>();
    T* po = out.as<T>();
    T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
    bool useLo = b.hasMin, useHi = b.hasMax;
    if constexpr (kIsFloat<T>) {
      lo = useLo ? T(b.min) : -std::numeric_limits<T>::infinity();
      hi = useHi ? T(b.max) : std::numeric_limits<T>::infinity();
      // Comparisons are false for NaN, so NaN passes through unchanged.
      for (int64_t i = 0; i < x.n; i++) {
        T v = px[i];
        po[i] = v < lo ? lo : v > hi ? hi : v;
      }
    } else {
      // Integer bounds: the smallest integer >= min and the largest <= max, saturated to the type's range.
      auto toT = [](double d) -> T {
        if (d <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
        if (d >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
        return T(d);
      };
      if (useLo) lo = toT(std::ceil(b.min));
      if (useHi) hi = toT(std::floor(b.max));
      for (int64_t i = 0; i < x.n; i++) {
        T v = px[i];
        po[i] = v < lo ? lo : v > hi ? hi : v;
      }
    }
  });
}

}  // namespace gs
