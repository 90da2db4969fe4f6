// Registration of the kernel tasks, one function per family.
#pragma once
#include <napi.h>

namespace gsb {
void registerElementwise(Napi::Env env, Napi::Object sync, Napi::Object async);
void registerReductions(Napi::Env env, Napi::Object sync, Napi::Object async);
void registerMovement(Napi::Env env, Napi::Object sync, Napi::Object async);
void registerIndexing(Napi::Env env, Napi::Object sync, Napi::Object async);
void registerNn(Napi::Env env, Napi::Object sync, Napi::Object async);
void registerRearrange(Napi::Env env, Napi::Object sync, Napi::Object async);
void registerCumulative(Napi::Env env, Napi::Object sync, Napi::Object async);
// linear algebra: spectral decompositions and QR
void registerLinalgSpectral(Napi::Env env, Napi::Object sync, Napi::Object async);
void registerConv(Napi::Env env, Napi::Object sync, Napi::Object async);
void registerFormat(Napi::Env env, Napi::Object exports);
// linear algebra: solves and factorizations
void registerLinalgSolve(Napi::Env env, Napi::Object sync, Napi::Object async);
}  // namespace gsb
