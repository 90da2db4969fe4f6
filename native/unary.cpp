// Elementwise unary ops (the list: GS_UNARY_OPS in op_tables.h). Scalar definitions here are the reference semantics;
// vecmath.cpp supplies SIMD versions of the hot float paths and falls back to these.
#include <cmath>
#include <limits>

#include "kernels.h"
#include "vecmath.h"

namespace gs {

namespace {
// Integer arithmetic wraps (two's complement) instead of invoking signed-overflow UB.
template <typename T> T wrapNeg(T x) { return T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(x)); }
template <typename T> T wrapMul(T a, T b) { return T(std::make_unsigned_t<T>(a) * std::make_unsigned_t<T>(b)); }

// The ops whose table entry says `ints`.
template <typename T> void unaryInt(UnaryOp op, const T* x, T* y, int64_t n) {
  switch (op) {
    case UnaryOp::Neg: for (int64_t i = 0; i < n; i++) y[i] = wrapNeg(x[i]); break;
    case UnaryOp::Abs: for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0 ? wrapNeg(x[i]) : x[i]; break;
    case UnaryOp::Sign: for (int64_t i = 0; i < n; i++) y[i] = T((x[i] > 0) - (x[i] < 0)); break;
    case UnaryOp::Square: for (int64_t i = 0; i < n; i++) y[i] = wrapMul(x[i], x[i]); break;
    case UnaryOp::Relu: for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : T(0); break;
    case UnaryOp::ReluGrad: for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? T(1) : T(0); break;
    default: invalid("unary op is not defined for integers");
  }
}

template <typename T> struct K {
  static constexpr T kSqrt1_2 = T(0.70710678118654752440);
  static constexpr T kSqrt2OverPi = T(0.79788456080286535588);
  static constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  static constexpr T k2OverSqrtPi = T(1.12837916709551257390);
  static constexpr T kGeluC = T(0.044715);
  // selu's constants at full precision; its negative branch uses their product, rounded in T as PyTorch does.
  static constexpr T kSeluScale = T(1.0507009873554805);
  static constexpr T kSeluAlphaScale = T(1.6732632423543772) * T(1.0507009873554805);
};

template <typename T> inline T sigmoidS(T x) { return T(1) / (T(1) + std::exp(-x)); }
// 1 - tanh(x)^2 as 4e / (1 + e)^2 with e = exp(-2|x|): no cancellation when tanh(x) rounds to +-1.
template <typename T> inline T sech2(T x) {
  T e = std::exp(T(-2) * std::fabs(x));
  T d = T(1) + e;
  return T(4) * e / (d * d);
}

// x * sigmoid(x) = (x > 0 ? x : x e) / (1 + e) with e = exp(-|x|): no overflow on either side, the same arithmetic as
// the vector path; -Infinity gives its limit -0 (x / (1 + e^-x) would be NaN there).
template <typename T> inline T siluS(T x) {
  if (x == -std::numeric_limits<T>::infinity()) return T(-0.0);
  T e = std::exp(-std::fabs(x));
  return (x > 0 ? x : x * e) / (T(1) + e);
}

// relu6(x + 3), NaN kept (the comparisons are false for NaN).
template <typename T> inline T relu6Shift3(T x) {
  T v = x + T(3);
  return v < T(0) ? T(0) : v > T(6) ? T(6) : v;
}

// Every op of the table: no default case, so an op without its scalar definition does not compile (-Werror=switch).
// `p` is the op's scalar parameter (alpha of leaky_relu, elu, celu).
template <typename T> inline T unaryScalar(UnaryOp op, T x, T p) {
  using C = K<T>;
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Log1p: return std::log1p(x);
    case UnaryOp::Expm1: return std::expm1(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Reciprocal: return T(1) / x;
    case UnaryOp::Abs: return std::fabs(x);
    case UnaryOp::Sign: return x > 0 ? T(1) : x < 0 ? T(-1) : x;  // keeps NaN and signed zero
    case UnaryOp::Sin: return std::sin(x);
    case UnaryOp::Cos: return std::cos(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return sigmoidS(x);
    case UnaryOp::Relu: return x > 0 ? x : (x == x ? T(0) : x);
    case UnaryOp::Softplus: return (x > 0 ? x : T(0)) + std::log1p(std::exp(-std::fabs(x)));
    case UnaryOp::Erf: return std::erf(x);
    case UnaryOp::Gelu: return T(0.5) * x * (T(1) + std::erf(x * C::kSqrt1_2));
    case UnaryOp::GeluTanh:  // 0.5 x (1 + tanh u) = x sigmoid(2u), which does not cancel where tanh u -> -1
      return x / (T(1) + std::exp(T(-2) * C::kSqrt2OverPi * (x + C::kGeluC * x * x * x)));
    case UnaryOp::SigmoidGrad: {
      // e/(1+e)^2 with e = exp(-|x|) is symmetric and never cancels, unlike s(1-s).
      T e = std::exp(-std::fabs(x));
      T d = T(1) + e;
      return e / (d * d);
    }
    case UnaryOp::TanhGrad: return sech2(x);
    case UnaryOp::ReluGrad: return x > 0 ? T(1) : T(0);
    case UnaryOp::GeluGrad:
      return T(0.5) * (T(1) + std::erf(x * C::kSqrt1_2)) + x * C::kInvSqrt2Pi * std::exp(T(-0.5) * x * x);
    case UnaryOp::GeluTanhGrad: {
      T x2 = x * x;
      T u = C::kSqrt2OverPi * (x + C::kGeluC * x2 * x);
      T s = T(1) / (T(1) + std::exp(T(-2) * u));  // 0.5 (1 + tanh u)
      return s + T(0.5) * x * sech2(u) * C::kSqrt2OverPi * (T(1) + T(3) * C::kGeluC * x2);
    }
    case UnaryOp::ErfGrad: return C::k2OverSqrtPi * std::exp(-x * x);
    case UnaryOp::Tan: return std::tan(x);
    case UnaryOp::Asin: return std::asin(x);
    case UnaryOp::Acos: return std::acos(x);
    case UnaryOp::Atan: return std::atan(x);
    case UnaryOp::Sinh: return std::sinh(x);
    case UnaryOp::Cosh: return std::cosh(x);
    case UnaryOp::Asinh: return std::asinh(x);
    case UnaryOp::Acosh: return std::acosh(x);
    case UnaryOp::Atanh: return std::atanh(x);
    case UnaryOp::Log2: return std::log2(x);
    case UnaryOp::Log10: return std::log10(x);
    case UnaryOp::Exp2: return std::exp2(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Floor: return std::floor(x);
    case UnaryOp::Ceil: return std::ceil(x);
    case UnaryOp::Round: return std::nearbyint(x);  // the default rounding mode: half to even
    case UnaryOp::Trunc: return std::trunc(x);
    case UnaryOp::Silu: return siluS(x);
    case UnaryOp::Mish: {
      // x tanh(softplus(x)), softplus as the Softplus case; -Infinity gives its limit -0 (x * 0 would be NaN).
      if (x == -std::numeric_limits<T>::infinity()) return T(-0.0);
      return x * std::tanh((x > 0 ? x : T(0)) + std::log1p(std::exp(-std::fabs(x))));
    }
    case UnaryOp::Selu: return x > 0 ? C::kSeluScale * x : C::kSeluAlphaScale * std::expm1(x);
    case UnaryOp::Hardsigmoid: return relu6Shift3(x) / T(6);
    case UnaryOp::Hardswish: return x * relu6Shift3(x) / T(6);
    case UnaryOp::Softsign:  // +-Infinity gives its limit +-1 (x / (1 + |x|) would be NaN there)
      return std::isinf(x) ? std::copysign(T(1), x) : x / (T(1) + std::fabs(x));
    case UnaryOp::LeakyRelu: return x > 0 ? x : x * p;
    case UnaryOp::Elu: return x > 0 ? x : p * std::expm1(x);
    case UnaryOp::Celu: return x > 0 ? x : p * std::expm1(x * T(1.0 / double(p)));
  }
  return x;
}

template <typename T> void unaryFloat(UnaryOp op, const T* x, T* y, int64_t n, T p = T(0)) {
  switch (op) {
    // Spelled out so each loop is specialised (and auto-vectorised where the compiler can).
    case UnaryOp::Neg: for (int64_t i = 0; i < n; i++) y[i] = -x[i]; break;
    case UnaryOp::Square: for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i]; break;
    case UnaryOp::Abs: for (int64_t i = 0; i < n; i++) y[i] = std::fabs(x[i]); break;
    case UnaryOp::Sqrt: for (int64_t i = 0; i < n; i++) y[i] = std::sqrt(x[i]); break;
    case UnaryOp::Reciprocal: for (int64_t i = 0; i < n; i++) y[i] = T(1) / x[i]; break;
    default:
      for (int64_t i = 0; i < n; i++) y[i] = unaryScalar(op, x[i], p);
  }
}
}  // namespace

bool parseUnaryOp(const std::string& s, UnaryOp& op) { return parseOpName(s, kUnaryOps, op); }

void checkUnary(UnaryOp op, DType dt) {
  if (isFloat(dt)) return;
  if (isInt(dt) && opInfo(op).ints) return;
  invalid(std::string("unary ") + opInfo(op).name + " does not accept " + dtypeName(dt));
}

void unary(UnaryOp op, const Arr& x, const Arr& out, double param) {
  checkUnary(op, x.dt);
  switch (x.dt) {
    case DType::F32:
      if (!vecUnaryF32(op, x.as<float>(), out.as<float>(), x.n))
        unaryFloat(op, x.as<float>(), out.as<float>(), x.n, float(param));
      break;
    case DType::F64:
      if (!vecUnaryF64(op, x.as<double>(), out.as<double>(), x.n))
        unaryFloat(op, x.as<double>(), out.as<double>(), x.n, param);
      break;
    case DType::I32: unaryInt(op, x.as<int32_t>(), out.as<int32_t>(), x.n); break;
    case DType::I64: unaryInt(op, x.as<int64_t>(), out.as<int64_t>(), x.n); break;
    default: invalid("unary: unsupported datatype");
  }
}

// Scalar fallbacks the SIMD paths use for their tails.
void unaryScalarF32(UnaryOp op, const float* x, float* y, int64_t n) { unaryFloat(op, x, y, n); }
void unaryScalarF64(UnaryOp op, const double* x, double* y, int64_t n) { unaryFloat(op, x, y, n); }

}  // namespace gs
