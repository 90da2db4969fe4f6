// cumulative (cumsum / cumprod scans), linearScan
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

struct CumulativeTask : Task {
  gs::CumulativeOp op;
  gs::Arr x, out;
  gs::Shape shape;
  int64_t axis = 0;
  bool exclusive = false, reverse = false;
  Held res;
  void parse(const Args& info) override {
    std::string name = stringArg(info, 0, "op");
    if (!gs::parseCumulativeOp(name, op)) invalid("unknown cumulative op '" + name + "'");
    x = arrayArg(*this, info, 1, "x");
    shape = shapeArg(info, 2, "shape");
    checkLength(x, shape, "x");
    axis = intArg(info, 3, "axis");
    exclusive = boolArg(info, 4, "exclusive");
    reverse = boolArg(info, 5, "reverse");
    gs::checkCumulative(x.dt, shape, axis);
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::cumulative(op, x, shape, axis, exclusive, reverse, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct LinearScanTask : Task {
  gs::Arr a, b, out;
  gs::Shape shape;
  int64_t axis = 0;
  bool reverse = false;
  Held res;
  void parse(const Args& info) override {
    a = arrayArg(*this, info, 0, "a");
    b = arrayArg(*this, info, 1, "b");
    shape = shapeArg(info, 2, "shape");
    checkLength(a, shape, "a");
    checkLength(b, shape, "b");
    axis = intArg(info, 3, "axis");
    reverse = boolArg(info, 4, "reverse");
    gs::checkLinearScan(a.dt, b.dt, shape, axis);
    out = allocOut(*this, info.Env(), b.dt, b.n, res);
  }
  void run() override { gs::linearScan(a, b, shape, axis, reverse, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&a, &b, &out}; }
};
}  // namespace

void registerCumulative(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<CumulativeTask>(env, sync, async, "cumulative");
  define<LinearScanTask>(env, sync, async, "linearScan");
}

}  // namespace gsb
