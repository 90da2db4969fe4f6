// Module entry: the sync kernels on `exports`, the same kernels returning Promises on `exports.async`, and info().
#include <napi.h>

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "../native/kernels.h"
#include "../native/linalg_solve.h"
#include "program.h"
#include "tasks.h"

#ifndef GRADSERVE_VERSION
#define GRADSERVE_VERSION "0.0.0"
#endif

namespace {
// Kernel outputs are large, short-lived and freed by V8's GC in batches. With glibc's defaults each one is a fresh
// mmap whose pages fault in on first write, which measured 2-5x slower than the kernels themselves; keeping freed
// memory in the heap for reuse removes that. GRADSERVE_MALLOC_TUNING=0 leaves the allocator alone.
bool tuneMalloc() {
#if defined(__GLIBC__)
  const char* env = std::getenv("GRADSERVE_MALLOC_TUNING");
  if (env && std::strcmp(env, "0") == 0) return false;
  // Blocks up to 256 MiB come from the heap; up to 512 MiB of free heap top is kept before trimming.
  return mallopt(M_MMAP_THRESHOLD, 256 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 512 << 20) == 1 &&
         mallopt(M_TOP_PAD, 16 << 20) == 1;
#else
  return false;
#endif
}

bool mallocTuned = false;

// The names of one op table (native/op_tables.h), in table order.
template <typename OpInfo, size_t N> Napi::Array opNames(Napi::Env env, const OpInfo (&table)[N]) {
  Napi::Array a = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; i++) a.Set(uint32_t(i), table[i].name);
  return a;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gs::BlasInfo b = gs::blasInfo();
  Napi::Object o = Napi::Object::New(env);
  o.Set("blas", b.name);
  o.Set("cblas", b.cblas);
  o.Set("simd", gs::simdName());
  o.Set("threads", b.threads);
  o.Set("version", GRADSERVE_VERSION);
  o.Set("lapack", gs::hasLapack());
  o.Set("mallocTuned", mallocTuned);
  Napi::Object ops = Napi::Object::New(env);
  ops.Set("unary", opNames(env, gs::kUnaryOps));
  ops.Set("binary", opNames(env, gs::kBinaryOps));
  ops.Set("reduce", opNames(env, gs::kReduceOps));
  ops.Set("argReduce", opNames(env, gs::kArgReduceOps));
  ops.Set("cumulative", opNames(env, gs::kCumulativeOps));
  ops.Set("matrixOp", opNames(env, gs::kMatrixOps));
  // linear algebra: spectral decompositions and QR
  ops.Set("spectral", opNames(env, gs::kSpectralOps));
  o.Set("ops", ops);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  mallocTuned = tuneMalloc();
  Napi::Object async = Napi::Object::New(env);
  gsb::registerElementwise(env, exports, async);
  gsb::registerReductions(env, exports, async);
  gsb::registerMovement(env, exports, async);
  gsb::registerIndexing(env, exports, async);
  gsb::registerNn(env, exports, async);
  gsb::registerRearrange(env, exports, async);
  gsb::registerCumulative(env, exports, async);
  // linear algebra: spectral decompositions and QR
  gsb::registerLinalgSpectral(env, exports, async);
  gsb::registerConv(env, exports, async);
  gsb::registerLinalgSolve(env, exports, async);
  exports.Set("async", async);
  gsb::registerPrograms(env, exports);
  gsb::registerFormat(env, exports);
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  return exports;
}
}  // namespace

NODE_API_MODULE(gradserve, Init)
