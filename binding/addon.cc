// Module entry: the sync kernels on `exports`, the same kernels returning Promises on `exports.async`, and info().
#include <napi.h>

#include "../native/kernels.h"
#include "tasks.h"

#ifndef GRADSERVE_VERSION
#define GRADSERVE_VERSION "0.0.0"
#endif

namespace {
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gs::BlasInfo b = gs::blasInfo();
  Napi::Object o = Napi::Object::New(env);
  o.Set("blas", b.name);
  o.Set("cblas", b.cblas);
  o.Set("simd", gs::simdName());
  o.Set("threads", b.threads);
  o.Set("version", GRADSERVE_VERSION);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Object async = Napi::Object::New(env);
  gsb::registerElementwise(env, exports, async);
  gsb::registerReductions(env, exports, async);
  gsb::registerMovement(env, exports, async);
  gsb::registerIndexing(env, exports, async);
  exports.Set("async", async);
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  return exports;
}
}  // namespace

NODE_API_MODULE(gradserve, Init)
