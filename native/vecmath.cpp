// SIMD unary paths. The AVX2+FMA code lives in functions with target attributes (never a global -mavx2), chosen at
// run time when the CPU has AVX2 and FMA and glibc's libmvec (loaded with dlopen, so the binary neither needs nor
// links it) provides the vector functions. libmvec's vector variants keep IEEE special cases: NaN in, NaN out; +-Inf
// and overflow give the scalar results. Everything without a vector path returns false and runs the scalar loop.
#include "vecmath.h"

#include <dlfcn.h>
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#define GS_AVX2 __attribute__((target("avx2,fma")))

namespace gs {
namespace {

using VF = __m256 (*)(__m256);
using VD = __m256d (*)(__m256d);

struct Mvec {
  VF expf = nullptr, logf = nullptr, log1pf = nullptr, expm1f = nullptr, sinf = nullptr, cosf = nullptr,
     tanhf = nullptr, erff = nullptr;
  VD exp = nullptr, log = nullptr, log1p = nullptr, expm1 = nullptr, sin = nullptr, cos = nullptr, tanh = nullptr,
     erf = nullptr;
  bool ok = false;
};

Mvec loadMvec() {
  Mvec m;
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return m;
  if (const char* env = std::getenv("GRADSERVE_SIMD"); env && std::strcmp(env, "off") == 0) return m;
  void* h = dlopen("libmvec.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) return m;
  auto f = [h](const char* name) { return reinterpret_cast<VF>(dlsym(h, name)); };
  auto d = [h](const char* name) { return reinterpret_cast<VD>(dlsym(h, name)); };
  m.expf = f("_ZGVdN8v_expf"); m.logf = f("_ZGVdN8v_logf"); m.log1pf = f("_ZGVdN8v_log1pf");
  m.expm1f = f("_ZGVdN8v_expm1f"); m.sinf = f("_ZGVdN8v_sinf"); m.cosf = f("_ZGVdN8v_cosf");
  m.tanhf = f("_ZGVdN8v_tanhf"); m.erff = f("_ZGVdN8v_erff");
  m.exp = d("_ZGVdN4v_exp"); m.log = d("_ZGVdN4v_log"); m.log1p = d("_ZGVdN4v_log1p");
  m.expm1 = d("_ZGVdN4v_expm1"); m.sin = d("_ZGVdN4v_sin"); m.cos = d("_ZGVdN4v_cos");
  m.tanh = d("_ZGVdN4v_tanh"); m.erf = d("_ZGVdN4v_erf");
  // glibc < 2.35 lacks tanh/erf/log1p/expm1 variants: then no vector path at all, to keep one behaviour per build.
  m.ok = m.expf && m.logf && m.log1pf && m.expm1f && m.sinf && m.cosf && m.tanhf && m.erff && m.exp && m.log &&
         m.log1p && m.expm1 && m.sin && m.cos && m.tanh && m.erf;
  return m;
}

const Mvec& mvec() {
  static const Mvec m = loadMvec();
  return m;
}

#include "vecmath_ops.inc"

}  // namespace

bool haveAvx2Fma() { return mvec().ok; }
const char* simdName() { return haveAvx2Fma() ? "avx2+fma" : "sse2"; }

bool vecUnaryF32(UnaryOp op, const float* x, float* y, int64_t n) {
  const Mvec& m = mvec();
  if (!m.ok || !hasVectorPath(op)) return false;
  runF32(op, x, y, n, m);
  return true;
}

bool vecUnaryF64(UnaryOp op, const double* x, double* y, int64_t n) {
  const Mvec& m = mvec();
  if (!m.ok || !hasVectorPath(op)) return false;
  runF64(op, x, y, n, m);
  return true;
}

}  // namespace gs
