// gather, scatterAdd, oneHot, cast
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

gs::Arr indexArg(Task& t, const Args& info, size_t i) {
  gs::Arr a = arrayArg(t, info, i, "indices");
  if (a.dt != gs::DType::I32 && a.dt != gs::DType::I64) invalid("indices must be an Int32Array or BigInt64Array");
  return a;
}

struct GatherTask : Task {
  gs::Arr x, ind, out;
  gs::Shape shape, is;
  int64_t axis = 0;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    ind = indexArg(*this, info, 2);
    is = shapeArg(info, 3, "indicesShape");
    checkLength(ind, is, "indices");
    axis = intArg(info, 4, "axis");
    gs::Shape os = gs::planGather(shape, is, axis);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(os), res);
  }
  void run() override { gs::gather(x, shape, ind, is, axis, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &ind, &out}; }
};

struct GatherElementsTask : Task {
  gs::Arr x, ind, out;
  gs::Shape shape, is;
  int64_t axis = 0;
  bool allowNegative = true;
  std::string what;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    ind = indexArg(*this, info, 2);
    is = shapeArg(info, 3, "indicesShape");
    checkLength(ind, is, "indices");
    axis = intArg(info, 4, "axis");
    allowNegative = boolArg(info, 5, "allowNegative");
    what = stringArg(info, 6, "what");
    gs::checkGatherElements(shape, is, axis);
    out = allocOut(*this, info.Env(), x.dt, ind.n, res);
  }
  void run() override { gs::gatherElements(x, shape, ind, is, axis, allowNegative, what, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &ind, &out}; }
};

struct ScatterAddTask : Task {
  gs::Arr g, ind, out;
  gs::Shape is, shape;
  int64_t axis = 0;
  Held res;
  void parse(const Args& info) override {
    g = arrayArg(*this, info, 0, "g");
    ind = indexArg(*this, info, 1);
    is = shapeArg(info, 2, "indicesShape");
    checkLength(ind, is, "indices");
    axis = intArg(info, 3, "axis");
    shape = shapeArg(info, 4, "shape");
    if (axis < 0 || axis >= int64_t(shape.size()))
      invalid("scatterAdd: axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(shape.size()));
    gs::Shape gShape = gs::planGather(shape, is, axis);
    checkLength(g, gShape, "g");
    gs::checkScatterAdd(g.dt, gShape, is, axis, shape);
    out = allocOut(*this, info.Env(), g.dt, gs::numel(shape), res);
  }
  void run() override { gs::scatterAdd(g, ind, is, axis, shape, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&g, &ind, &out}; }
};

struct OneHotTask : Task {
  gs::Arr ind, out;
  gs::Shape is;
  int64_t depth = 0, axis = 0;
  Held res;
  void parse(const Args& info) override {
    ind = indexArg(*this, info, 0);
    is = shapeArg(info, 1, "indicesShape");
    checkLength(ind, is, "indices");
    depth = intArg(info, 2, "depth");
    axis = intArg(info, 3, "axis");
    gs::DType dt;
    std::string name = stringArg(info, 4, "dtype");
    if (!gs::parseDType(name, dt)) invalid("unknown datatype '" + name + "'");
    gs::Shape os = gs::planOneHot(is, depth, axis);
    out = allocOut(*this, info.Env(), dt, gs::numel(os), res);
  }
  void run() override { gs::oneHot(ind, is, depth, axis, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&ind, &out}; }
};

struct CastTask : Task {
  gs::Arr x, out;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    gs::DType dt;
    std::string name = stringArg(info, 1, "to");
    if (!gs::parseDType(name, dt)) invalid("unknown datatype '" + name + "'");
    out = allocOut(*this, info.Env(), dt, x.n, res);
  }
  void run() override { gs::cast(x, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};
}  // namespace

void registerIndexing(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<GatherTask>(env, sync, async, "gather");
  define<GatherElementsTask>(env, sync, async, "gatherElements");
  define<ScatterAddTask>(env, sync, async, "scatterAdd");
  define<OneHotTask>(env, sync, async, "oneHot");
  define<CastTask>(env, sync, async, "cast");
}

}  // namespace gsb
