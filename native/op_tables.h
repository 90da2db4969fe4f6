// The op tables: one list per family of name-selected kernels (unary, binary, reduce, arg-reduce, cumulative), each
// an X-macro X(Enum, "name", facts...). The enum, the names the binding parses, the names info() exports to JS and
// every per-op fact are expanded from that one list, so nothing is ever matched by position by hand.
// test/native/op_tables.test.ts checks the lists against the kernel names the TypeScript op registry uses.
//
// Adding a unary op: one GS_UNARY_OPS entry here, its case in unaryScalar (native/unary.cpp; a missing case does not
// compile), a case in unaryInt when it takes integers, and a case in evalVec (native/vecmath_generic.inc) when it has a
// SIMD path. Adding a binary op: one GS_BINARY_OPS entry and its GS_BIN functor (native/binary.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace gs {

// ---- unary: X(Enum, "name", ints, simd) ----
// ints: also defined on INT32/INT64 (else FP only). simd: has a vector path in evalVec (vecmath_generic.inc).
// The *_grad entries are local derivatives f'(x) that derivative rules use. leaky_relu, elu and celu read the
// kernel's scalar parameter (their `alpha`); every other op ignores it.
#define GS_UNARY_OPS(X)                            \
  X(Neg, "neg", true, false)                       \
  X(Exp, "exp", false, true)                       \
  X(Log, "log", false, true)                       \
  X(Log1p, "log1p", false, true)                   \
  X(Expm1, "expm1", false, true)                   \
  X(Sqrt, "sqrt", false, false)                    \
  X(Square, "square", true, false)                 \
  X(Reciprocal, "reciprocal", false, false)        \
  X(Abs, "abs", true, false)                       \
  X(Sign, "sign", true, true)                      \
  X(Sin, "sin", false, true)                       \
  X(Cos, "cos", false, true)                       \
  X(Tanh, "tanh", false, true)                     \
  X(Sigmoid, "sigmoid", false, true)               \
  X(Relu, "relu", true, true)                      \
  X(Softplus, "softplus", false, true)             \
  X(Erf, "erf", false, true)                       \
  X(Gelu, "gelu", false, true)                     \
  X(GeluTanh, "gelu_tanh", false, true)            \
  X(SigmoidGrad, "sigmoid_grad", false, true)      \
  X(TanhGrad, "tanh_grad", false, true)            \
  X(ReluGrad, "relu_grad", true, true)             \
  X(GeluGrad, "gelu_grad", false, true)            \
  X(GeluTanhGrad, "gelu_tanh_grad", false, true)   \
  X(ErfGrad, "erf_grad", false, true)              \
  X(Tan, "tan", false, false)                      \
  X(Asin, "asin", false, false)                    \
  X(Acos, "acos", false, false)                    \
  X(Atan, "atan", false, false)                    \
  X(Sinh, "sinh", false, false)                    \
  X(Cosh, "cosh", false, false)                    \
  X(Asinh, "asinh", false, false)                  \
  X(Acosh, "acosh", false, false)                  \
  X(Atanh, "atanh", false, false)                  \
  X(Log2, "log2", false, false)                    \
  X(Log10, "log10", false, false)                  \
  X(Exp2, "exp2", false, false)                    \
  X(Rsqrt, "rsqrt", false, false)                  \
  X(Floor, "floor", false, false)                  \
  X(Ceil, "ceil", false, false)                    \
  X(Round, "round", false, false)                  \
  X(Trunc, "trunc", false, false)                  \
  X(Silu, "silu", false, true)                     \
  X(Mish, "mish", false, false)                    \
  X(Selu, "selu", false, false)                    \
  X(Hardsigmoid, "hardsigmoid", false, false)      \
  X(Hardswish, "hardswish", false, false)          \
  X(Softsign, "softsign", false, false)            \
  X(LeakyRelu, "leaky_relu", false, false)         \
  X(Elu, "elu", false, false)                      \
  X(Celu, "celu", false, false)

// ---- binary (NumPy broadcasting): X(Enum, "name", kind, simd) ----
// kind: Num (FP32/FP64/INT32/INT64 in, the same out), Fp (FP32/FP64 only), Cmp (BOOL out; every datatype in, BOOL
// too: comparisons and the logical ops, which read a nonzero as true). simd: has a vector path in runBinary
// (vecmath_generic.inc). The scalar definition of each op is its functor Op<Enum> in native/binary.cpp.
#define GS_BINARY_OPS(X)                           \
  X(Add, "add", Num, true)                         \
  X(Sub, "sub", Num, true)                         \
  X(Mul, "mul", Num, true)                         \
  X(Div, "div", Num, true)                         \
  X(Pow, "pow", Num, false)                        \
  X(Maximum, "maximum", Num, false)                \
  X(Minimum, "minimum", Num, false)                \
  X(Equal, "equal", Cmp, false)                    \
  X(NotEqual, "not_equal", Cmp, false)             \
  X(Less, "less", Cmp, false)                      \
  X(LessEqual, "less_equal", Cmp, false)           \
  X(Greater, "greater", Cmp, false)                \
  X(GreaterEqual, "greater_equal", Cmp, false)     \
  X(MulNoNan, "mul_no_nan", Num, true)             \
  X(Atan2, "atan2", Fp, false)                     \
  X(Mod, "mod", Num, false)                        \
  X(Fmod, "fmod", Num, false)                      \
  X(LogAddExp, "logaddexp", Fp, false)             \
  X(Hypot, "hypot", Fp, false)                     \
  X(LogicalAnd, "logical_and", Cmp, false)         \
  X(LogicalOr, "logical_or", Cmp, false)           \
  X(LogicalXor, "logical_xor", Cmp, false)

// ---- reduce over axes: X(Enum, "name", fpOnly, identity) ----
// fpOnly: FP32/FP64 only (else integers too). identity: defined over a zero-size axis (max/min are not).
#define GS_REDUCE_OPS(X)                           \
  X(Sum, "sum", false, true)                       \
  X(Mean, "mean", true, true)                      \
  X(Max, "max", false, false)                      \
  X(Min, "min", false, false)                      \
  X(Prod, "prod", false, true)                     \
  X(LogSumExp, "logsumexp", true, true)

// ---- arg-reduce along one axis (or the flattened tensor): X(Enum, "name") ----
#define GS_ARG_REDUCE_OPS(X)                       \
  X(ArgMax, "argmax")                              \
  X(ArgMin, "argmin")

// ---- cumulative along one axis (native/cumulative.cpp): X(Enum, "name") ----
#define GS_CUMULATIVE_OPS(X)                       \
  X(CumSum, "cumsum")                              \
  X(CumProd, "cumprod")

// ---- linear algebra, one square matrix in (native/linalg_solve.cpp): X(Enum, "name", matrixOut) ----
// matrixOut: the output is (..., n, n) like the input, else one number per matrix (...). Batched over leading axes.
// cofactor is det(a) * inv(a)^T, exact at singular matrices too (the derivative of det).
#define GS_MATRIX_OPS(X)                           \
  X(Inv, "inv", true)                              \
  X(Cholesky, "cholesky", true)                    \
  X(Det, "det", false)                             \
  X(LogAbsDet, "logabsdet", false)                 \
  X(Cofactor, "cofactor", true)                    \
  X(SymTril, "sym_tril", true)                     \
  X(SymTrilAdjoint, "sym_tril_adjoint", true)

// ---- linear algebra: spectral decompositions and QR through LAPACK (native/linalg_spectral.cpp): X(Enum, "name") ----
#define GS_SPECTRAL_OPS(X)                         \
  X(EighValues, "eigh_values")                     \
  X(EighVectors, "eigh_vectors")                   \
  X(SvdValues, "svd_values")                       \
  X(SvdVectors, "svd_vectors")                     \
  X(QrQ, "qr_q")                                   \
  X(QrR, "qr_r")

#define GS_OP_ENUM(E, ...) E,
#define GS_OP_COUNT(...) +1

enum class UnaryOp : uint8_t { GS_UNARY_OPS(GS_OP_ENUM) };
enum class BinaryOp : uint8_t { GS_BINARY_OPS(GS_OP_ENUM) };
enum class ReduceOp : uint8_t { GS_REDUCE_OPS(GS_OP_ENUM) };
enum class ArgReduceOp : uint8_t { GS_ARG_REDUCE_OPS(GS_OP_ENUM) };
enum class CumulativeOp : uint8_t { GS_CUMULATIVE_OPS(GS_OP_ENUM) };
enum class MatrixOp : uint8_t { GS_MATRIX_OPS(GS_OP_ENUM) };
enum class SpectralOp : uint8_t { GS_SPECTRAL_OPS(GS_OP_ENUM) };

struct UnaryInfo {
  const char* name;
  bool ints, simd;
};
// What a binary op accepts and returns (the `kind` column of GS_BINARY_OPS).
enum class BinaryKind : uint8_t { Num, Fp, Cmp };
struct BinaryInfo {
  const char* name;
  BinaryKind kind;
  bool simd;
};
struct ReduceInfo {
  const char* name;
  bool fpOnly, identity;
};
struct ArgReduceInfo {
  const char* name;
};
struct CumulativeInfo {
  const char* name;
};
struct MatrixInfo {
  const char* name;
  bool matrixOut;
};
struct SpectralInfo {
  const char* name;
};

#define GS_OP_INFO2(E, N, A, B) {N, A, B},
#define GS_OP_INFO0(E, N) {N},
#define GS_OP_INFO_BINARY(E, N, KIND, SIMD) {N, BinaryKind::KIND, SIMD},
#define GS_OP_INFO1(E, N, A) {N, A},
inline constexpr UnaryInfo kUnaryOps[] = {GS_UNARY_OPS(GS_OP_INFO2)};
inline constexpr BinaryInfo kBinaryOps[] = {GS_BINARY_OPS(GS_OP_INFO_BINARY)};
inline constexpr ReduceInfo kReduceOps[] = {GS_REDUCE_OPS(GS_OP_INFO2)};
inline constexpr ArgReduceInfo kArgReduceOps[] = {GS_ARG_REDUCE_OPS(GS_OP_INFO0)};
inline constexpr CumulativeInfo kCumulativeOps[] = {GS_CUMULATIVE_OPS(GS_OP_INFO0)};
inline constexpr MatrixInfo kMatrixOps[] = {GS_MATRIX_OPS(GS_OP_INFO1)};
inline constexpr SpectralInfo kSpectralOps[] = {GS_SPECTRAL_OPS(GS_OP_INFO0)};
#undef GS_OP_INFO2
#undef GS_OP_INFO0
#undef GS_OP_INFO_BINARY
#undef GS_OP_INFO1

// The tables are indexed by the enums they share a list with; the op enums are uint8_t.
static_assert(sizeof(kUnaryOps) / sizeof(kUnaryOps[0]) == 0 GS_UNARY_OPS(GS_OP_COUNT), "unary table size");
static_assert(sizeof(kBinaryOps) / sizeof(kBinaryOps[0]) == 0 GS_BINARY_OPS(GS_OP_COUNT), "binary table size");
static_assert(sizeof(kReduceOps) / sizeof(kReduceOps[0]) == 0 GS_REDUCE_OPS(GS_OP_COUNT), "reduce table size");
static_assert(sizeof(kArgReduceOps) / sizeof(kArgReduceOps[0]) == 0 GS_ARG_REDUCE_OPS(GS_OP_COUNT), "arg-reduce table size");
static_assert(sizeof(kCumulativeOps) / sizeof(kCumulativeOps[0]) == 0 GS_CUMULATIVE_OPS(GS_OP_COUNT), "cumulative table size");
static_assert(sizeof(kMatrixOps) / sizeof(kMatrixOps[0]) == 0 GS_MATRIX_OPS(GS_OP_COUNT), "matrix table size");
static_assert(sizeof(kSpectralOps) / sizeof(kSpectralOps[0]) == 0 GS_SPECTRAL_OPS(GS_OP_COUNT), "spectral table size");
static_assert(0 GS_UNARY_OPS(GS_OP_COUNT) <= 256 && 0 GS_BINARY_OPS(GS_OP_COUNT) <= 256, "op enums are uint8_t");

inline constexpr const UnaryInfo& opInfo(UnaryOp op) { return kUnaryOps[size_t(op)]; }
inline constexpr const BinaryInfo& opInfo(BinaryOp op) { return kBinaryOps[size_t(op)]; }
inline constexpr const ReduceInfo& opInfo(ReduceOp op) { return kReduceOps[size_t(op)]; }
inline constexpr const ArgReduceInfo& opInfo(ArgReduceOp op) { return kArgReduceOps[size_t(op)]; }
inline constexpr const CumulativeInfo& opInfo(CumulativeOp op) { return kCumulativeOps[size_t(op)]; }
inline constexpr const MatrixInfo& opInfo(MatrixOp op) { return kMatrixOps[size_t(op)]; }
inline constexpr const SpectralInfo& opInfo(SpectralOp op) { return kSpectralOps[size_t(op)]; }

// The op of `table` named `s` (false when there is none).
template <typename Op, typename Info, size_t N> bool parseOpName(const std::string& s, const Info (&table)[N], Op& op) {
  for (size_t i = 0; i < N; i++)
    if (s == table[i].name) {
      op = Op(i);
      return true;
    }
  return false;
}

}  // namespace gs
