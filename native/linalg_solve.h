// Linear solves and factorizations (native/linalg_solve.cpp): LAPACK and level-3 BLAS from the linked OpenBLAS,
// batched over leading axes (broadcast between the two operands), FP32 and FP64, row-major. A build without LAPACK
// compiles these kernels and they throw UNSUPPORTED. Data problems found while running (a singular matrix, one that is
// not positive definite) throw SINGULAR_MATRIX / NOT_POSITIVE_DEFINITE naming the batch index of the matrix.
#pragma once
#include "common.h"
#include "op_tables.h"

namespace gs {

// Opened around a run of a native program with two or more steps that factor (binding/program.cc): within it, the LU
// factorizations a step computed for a batch of matrices are reused by a later step of the same run on the same
// thread that factors a batch of exactly the same shape and contents (a solve's VJP solves with the matrices its
// forward pass factored, det's gradient inverts the matrices det factored; native/linalg_lu.h). Batches from 256
// elements are remembered, up to 64 MiB per run; nothing outlives the run, so no request sees another's.
class FactorizationScope {
 public:
  FactorizationScope();
  ~FactorizationScope();
  FactorizationScope(const FactorizationScope&) = delete;
  FactorizationScope& operator=(const FactorizationScope&) = delete;

 private:
  bool owner_ = false;
};

// Whether this build has LAPACK (the kernels below work) and triangular solves (level-3 BLAS).
bool hasLapack();

bool parseMatrixOp(const std::string& s, MatrixOp& op);
// a is (..., n, n); the output is (..., n, n) or (...) (op_tables.h, matrixOut).
Shape planMatrixOp(MatrixOp op, DType dt, const Shape& shape);
void matrixOp(MatrixOp op, const Arr& a, const Shape& shape, const Arr& out);

// Two operands a (..., n, n) and b (..., n, k) (or (..., k, n) for a right-side triangular solve), batch dims
// broadcast: the output shape.
Shape planTriangularSolve(DType ad, const Shape& as, DType bd, const Shape& bs, bool left);
// x with a x = b (left) or x a = b, reading only a's lower (or upper) triangle, and not its diagonal with `unit`.
void triangularSolve(const Arr& a, const Shape& as, const Arr& b, const Shape& bs, bool lower, bool unit, bool left,
                     const Shape& outShape, const Arr& out);

Shape planSolve(DType ad, const Shape& as, DType bd, const Shape& bs);
// x with a x = b (a^T x = b with `transA`), LU with partial pivoting; an exactly zero pivot is SINGULAR_MATRIX.
void solve(const Arr& a, const Shape& as, const Arr& b, const Shape& bs, bool transA, const Shape& outShape,
           const Arr& out);

// a (..., m, n), b (..., m, k): x (..., n, k), the minimum-norm least-squares solution (SVD, rcond = eps * max(m, n)).
Shape planLstsq(DType ad, const Shape& as, DType bd, const Shape& bs);
void lstsq(const Arr& a, const Shape& as, const Arr& b, const Shape& bs, const Shape& outShape, const Arr& out);

}  // namespace gs
