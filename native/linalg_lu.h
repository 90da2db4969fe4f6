// LU factorizations of batches of square matrices for the LAPACK kernels (native/linalg_solve.cpp), with the per-run
// memo FactorizationScope opens: a program step that factors a batch of exactly the contents a former step of the
// same run factored gets that factorization back instead of computing it again (a solve's VJP solves with the matrix
// its forward pass factored; det's gradient inverts the matrices det factored).
#pragma once
#include <cstdint>
#include <memory>

#include "common.h"

namespace gs::la {

// The LUs of `count` n x n matrices, each of the row-major buffer read as the column-major matrix it is (so of a^T):
// count * n * n factors, count * n pivots (1-based, LAPACK's), and per matrix getrf's info (> 0: the 1-based index
// of an exactly zero pivot).
template <typename T> struct LuBatch {
  std::shared_ptr<const void> held;  // owns the three arrays (null: this thread's scratch)
  const T* lu = nullptr;
  const int* piv = nullptr;
  const int* info = nullptr;
};

// Factors the `count` matrices of `a` (n x n each, contiguous), split across the threads a SplitScope grants, or
// returns the factorization a former step of the run computed for the same n, count and contents. Outside the memo
// the arrays are this thread's scratch: valid until its next factorBatch call.
template <typename T> LuBatch<T> factorBatch(int64_t count, int n, const T* a);

// det (or log|det| with logAbs) from one LU: the product of U's diagonal, its sign flipped by every row interchange.
template <typename T> double detFromLu(int n, const T* lu, const int* ipiv, bool logAbs);

}  // namespace gs::la
