// SIMD unary paths in tiers chosen at run time: AVX-512F, else AVX2+FMA, else none (the scalar loops). The vector
// code lives in functions with target attributes (never a global -mavx2 / -march), one namespace per tier. Besides an
// inline expf, the vector functions come from glibc's libmvec, opened with dlopen so the binary neither links nor
// needs it; libmvec keeps IEEE special cases (NaN in, NaN out; +-Inf and overflow as the scalar functions).
// GRADSERVE_SIMD=off|avx2 caps the tier (tests use it to check every tier against the scalar path).
#include "vecmath.h"

#include <dlfcn.h>
#include <immintrin.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

namespace gs {
namespace {

// The ops whose table entry (op_tables.h) says `simd`: evalVec has their vector definition.
bool hasVectorPath(UnaryOp op) { return opInfo(op).simd; }

// GCC 12's avx512fintrin.h trips -Wmaybe-uninitialized on its own _mm512_undefined_* helpers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx2 {
#include "vecmath_avx2.inc"
}
namespace avx512 {
#include "vecmath_avx512.inc"
}
#pragma GCC diagnostic pop

enum class Tier { None, Avx2, Avx512 };

struct Simd {
  Tier tier = Tier::None;
  avx2::FnsF f8{};
  avx2::FnsD d4{};
  avx512::FnsF f16{};
  avx512::FnsD d8{};
};

// Resolves the 8 libmvec names (log, log1p, expm1, sin, cos, tanh, erf, exp) for one vector width; all or nothing.
template <typename Fn> bool resolve(void* h, const char* prefix, const char* suffix, Fn* out[8]) {
  static const char* const names[8] = {"log", "log1p", "expm1", "sin", "cos", "tanh", "erf", "exp"};
  for (int i = 0; i < 8; i++) {
    std::string sym = std::string(prefix) + names[i] + suffix;
    *out[i] = reinterpret_cast<Fn>(dlsym(h, sym.c_str()));
    if (*out[i] == nullptr) return false;
  }
  return true;
}

Simd detect() {
  Simd s;
  const char* env = std::getenv("GRADSERVE_SIMD");
  if (env && std::strcmp(env, "off") == 0) return s;
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return s;
  // libmvec's tanh/erf/log1p/expm1 arrived in glibc 2.35; without them there is no vector path at all.
  void* h = dlopen("libmvec.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) return s;
  avx2::VF unusedF;
  avx2::VF* f8[8] = {&s.f8.log_, &s.f8.log1p_, &s.f8.expm1_, &s.f8.sin_, &s.f8.cos_, &s.f8.tanh_, &s.f8.erf_, &unusedF};
  avx2::VD* d4[8] = {&s.d4.log, &s.d4.log1p, &s.d4.expm1, &s.d4.sin, &s.d4.cos, &s.d4.tanh, &s.d4.erf, &s.d4.exp};
  if (!resolve(h, "_ZGVdN8v_", "f", f8) || !resolve(h, "_ZGVdN4v_", "", d4)) return s;
  s.tier = Tier::Avx2;
  if (env && std::strcmp(env, "avx2") == 0) return s;
  if (!__builtin_cpu_supports("avx512f")) return s;
  avx512::VF unusedF16;
  avx512::VF* f16[8] = {&s.f16.log_, &s.f16.log1p_, &s.f16.expm1_, &s.f16.sin_, &s.f16.cos_, &s.f16.tanh_,
                        &s.f16.erf_, &unusedF16};
  avx512::VD* d8[8] = {&s.d8.log, &s.d8.log1p, &s.d8.expm1, &s.d8.sin, &s.d8.cos, &s.d8.tanh, &s.d8.erf, &s.d8.exp};
  if (resolve(h, "_ZGVeN16v_", "f", f16) && resolve(h, "_ZGVeN8v_", "", d8)) s.tier = Tier::Avx512;
  return s;
}

const Simd& simd() {
  static const Simd s = detect();
  return s;
}

}  // namespace

bool haveAvx2Fma() { return simd().tier != Tier::None; }

const char* simdName() {
  switch (simd().tier) {
    case Tier::Avx512: return "avx512f";
    case Tier::Avx2: return "avx2+fma";
    default: return "sse2";
  }
}

bool vecUnaryF32(UnaryOp op, const float* x, float* y, int64_t n) {
  const Simd& s = simd();
  if (s.tier == Tier::None || !hasVectorPath(op)) return false;
  if (s.tier == Tier::Avx512) avx512::runVec<avx512::LF>(op, x, y, n, s.f16);
  else avx2::runVec<avx2::LF>(op, x, y, n, s.f8);
  return true;
}

namespace {
template <typename T>
bool vecBinaryT(BinaryOp op, const T* a, int64_t sa, const T* b, int64_t sb, T* o, int64_t n) {
  const Simd& s = simd();
  if (s.tier == Tier::None || n <= 0) return false;
  if (!opInfo(op).simd) return false;
  if ((sa != 0 && sa != 1) || (sb != 0 && sb != 1)) return false;
  if constexpr (std::is_same<T, float>::value) {
    if (s.tier == Tier::Avx512) avx512::runBinary<avx512::LF>(op, a, sa, b, sb, o, n);
    else avx2::runBinary<avx2::LF>(op, a, sa, b, sb, o, n);
  } else {
    if (s.tier == Tier::Avx512) avx512::runBinary<avx512::LD>(op, a, sa, b, sb, o, n);
    else avx2::runBinary<avx2::LD>(op, a, sa, b, sb, o, n);
  }
  return true;
}
}  // namespace

bool vecBinaryF32(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n) {
  return vecBinaryT(op, a, sa, b, sb, o, n);
}
bool vecBinaryF64(BinaryOp op, const double* a, int64_t sa, const double* b, int64_t sb, double* o, int64_t n) {
  return vecBinaryT(op, a, sa, b, sb, o, n);
}

bool vecUnaryF64(UnaryOp op, const double* x, double* y, int64_t n) {
  const Simd& s = simd();
  if (s.tier == Tier::None || !hasVectorPath(op)) return false;
  if (s.tier == Tier::Avx512) avx512::runVec<avx512::LD>(op, x, y, n, s.d8);
  else avx2::runVec<avx2::LD>(op, x, y, n, s.d4);
  return true;
}

}  // namespace gs
