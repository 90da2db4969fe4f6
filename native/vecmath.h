// SIMD elementwise paths chosen at run time (AVX-512F or AVX2+FMA, with glibc's libmvec; else none).
#pragma once
#include <cstdint>

#include "kernels.h"

namespace gs {
// Return false when the op has no SIMD path on this CPU; the caller then runs the scalar loop.
bool vecUnaryF32(UnaryOp op, const float* x, float* y, int64_t n);
bool vecUnaryF64(UnaryOp op, const double* x, double* y, int64_t n);
// add/sub/mul/div with contiguous (stride 1) or scalar (stride 0) operands into a contiguous output.
bool vecBinaryF32(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n);
bool vecBinaryF64(BinaryOp op, const double* a, int64_t sa, const double* b, int64_t sb, double* o, int64_t n);
void unaryScalarF32(UnaryOp op, const float* x, float* y, int64_t n);
void unaryScalarF64(UnaryOp op, const double* x, double* y, int64_t n);
bool haveAvx2Fma();
}  // namespace gs
