// spectral: eigh / svd / qr of a batch of matrices (native/linalg_spectral.cpp)
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

struct SpectralTask : Task {
  gs::SpectralOp op;
  gs::Arr x, out;
  gs::Shape shape, os;
  Held res;
  void parse(const Args& info) override {
    std::string name = stringArg(info, 0, "op");
    if (!gs::parseSpectralOp(name, op)) invalid("unknown spectral op '" + name + "'");
    x = arrayArg(*this, info, 1, "x");
    shape = shapeArg(info, 2, "shape");
    checkLength(x, shape, "x");
    os = gs::planSpectral(op, x.dt, shape);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(os), res);
  }
  void run() override { gs::spectral(op, x, shape, out); }
  Napi::Value result(Napi::Env env) override { return shaped(env, res, os); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};
}  // namespace

void registerLinalgSpectral(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<SpectralTask>(env, sync, async, "spectral");
}

}  // namespace gsb
