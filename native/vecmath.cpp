#include "vecmath.h"

namespace gs {
bool haveAvx2Fma() { return false; }
bool vecUnaryF32(UnaryOp, const float*, float*, int64_t) { return false; }
bool vecUnaryF64(UnaryOp, const double*, double*, int64_t) { return false; }
const char* simdName() { return haveAvx2Fma() ? "avx2+fma" : "sse2"; }
}  // namespace gs
