// SIMD elementwise paths chosen at run time (AVX2+FMA with glibc's libmvec when present, else none).
#pragma once
#include <cstdint>

#include "kernels.h"

namespace gs {
// Return false when the op has no SIMD path on this CPU; the caller then runs the scalar loop.
bool vecUnaryF32(UnaryOp op, const float* x, float* y, int64_t n);
bool vecUnaryF64(UnaryOp op, const double* x, double* y, int64_t n);
void unaryScalarF32(UnaryOp op, const float* x, float* y, int64_t n);
void unaryScalarF64(UnaryOp op, const double* x, double* y, int64_t n);
bool haveAvx2Fma();
}  // namespace gs
