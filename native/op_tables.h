// The op tables: one list per family of name-selected kernels (unary, binary, reduce, arg-reduce), each an X-macro
// X(Enum, "name", facts...). The enum, the names the binding parses, the names info() exports to JS and every per-op
// fact are expanded from that one list, so nothing is ever matched by position by hand. test/native/op_tables.test.ts
// checks the lists against the kernel names the TypeScript op registry uses.
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
// The *_grad entries are local derivatives f'(x) that derivative rules use.
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
  X(ErfGrad, "erf_grad", false, true)

// ---- binary (NumPy broadcasting): X(Enum, "name", comparison, simd) ----
// comparison: BOOL output, also defined on BOOL operands. simd: has a vector path in runBinary (vecmath_generic.inc).
// The scalar definition of each op is its functor Op<Enum> in native/binary.cpp.
#define GS_BINARY_OPS(X)                           \
  X(Add, "add", false, true)                       \
  X(Sub, "sub", false, true)                       \
  X(Mul, "mul", false, true)                       \
  X(Div, "div", false, true)                       \
  X(Pow, "pow", false, false)                      \
  X(Maximum, "maximum", false, false)              \
  X(Minimum, "minimum", false, false)              \
  X(Equal, "equal", true, false)                   \
  X(NotEqual, "not_equal", true, false)            \
  X(Less, "less", true, false)                     \
  X(LessEqual, "less_equal", true, false)          \
  X(Greater, "greater", true, false)               \
  X(GreaterEqual, "greater_equal", true, false)    \
  X(MulNoNan, "mul_no_nan", false, false)

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

#define GS_OP_ENUM(E, ...) E,
#define GS_OP_COUNT(...) +1

enum class UnaryOp : uint8_t { GS_UNARY_OPS(GS_OP_ENUM) };
enum class BinaryOp : uint8_t { GS_BINARY_OPS(GS_OP_ENUM) };
enum class ReduceOp : uint8_t { GS_REDUCE_OPS(GS_OP_ENUM) };
enum class ArgReduceOp : uint8_t { GS_ARG_REDUCE_OPS(GS_OP_ENUM) };

struct UnaryInfo {
  const char* name;
  bool ints, simd;
};
struct BinaryInfo {
  const char* name;
  bool comparison, simd;
};
struct ReduceInfo {
  const char* name;
  bool fpOnly, identity;
};
struct ArgReduceInfo {
  const char* name;
};

#define GS_OP_INFO2(E, N, A, B) {N, A, B},
#define GS_OP_INFO0(E, N) {N},
inline constexpr UnaryInfo kUnaryOps[] = {GS_UNARY_OPS(GS_OP_INFO2)};
inline constexpr BinaryInfo kBinaryOps[] = {GS_BINARY_OPS(GS_OP_INFO2)};
inline constexpr ReduceInfo kReduceOps[] = {GS_REDUCE_OPS(GS_OP_INFO2)};
inline constexpr ArgReduceInfo kArgReduceOps[] = {GS_ARG_REDUCE_OPS(GS_OP_INFO0)};
#undef GS_OP_INFO2
#undef GS_OP_INFO0

// The tables are indexed by the enums they share a list with; the op enums are uint8_t.
static_assert(sizeof(kUnaryOps) / sizeof(kUnaryOps[0]) == 0 GS_UNARY_OPS(GS_OP_COUNT), "unary table size");
static_assert(sizeof(kBinaryOps) / sizeof(kBinaryOps[0]) == 0 GS_BINARY_OPS(GS_OP_COUNT), "binary table size");
static_assert(sizeof(kReduceOps) / sizeof(kReduceOps[0]) == 0 GS_REDUCE_OPS(GS_OP_COUNT), "reduce table size");
static_assert(sizeof(kArgReduceOps) / sizeof(kArgReduceOps[0]) == 0 GS_ARG_REDUCE_OPS(GS_OP_COUNT), "arg-reduce table size");
static_assert(0 GS_UNARY_OPS(GS_OP_COUNT) <= 256 && 0 GS_BINARY_OPS(GS_OP_COUNT) <= 256, "op enums are uint8_t");

inline constexpr const UnaryInfo& opInfo(UnaryOp op) { return kUnaryOps[size_t(op)]; }
inline constexpr const BinaryInfo& opInfo(BinaryOp op) { return kBinaryOps[size_t(op)]; }
inline constexpr const ReduceInfo& opInfo(ReduceOp op) { return kReduceOps[size_t(op)]; }
inline constexpr const ArgReduceInfo& opInfo(ArgReduceOp op) { return kArgReduceOps[size_t(op)]; }

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
