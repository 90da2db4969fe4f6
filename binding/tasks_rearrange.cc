// scatterAddElements, roll, triangle, sortIndices
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

struct ScatterAddElementsTask : Task {
  gs::Arr x, ind, upd, out;
  gs::Shape shape, is;
  int64_t axis = 0;
  bool hasBase = false;
  Held res;
  void parse(const Args& info) override {
    hasBase = !isNullish(info, 0);
    if (hasBase) x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    if (hasBase) checkLength(x, shape, "x");
    ind = arrayArg(*this, info, 2, "indices");
    if (ind.dt != gs::DType::I32 && ind.dt != gs::DType::I64) invalid("indices must be an Int32Array or BigInt64Array");
    is = shapeArg(info, 3, "indicesShape");
    checkLength(ind, is, "indices");
    upd = arrayArg(*this, info, 4, "updates");
    checkLength(upd, is, "updates");
    axis = intArg(info, 5, "axis");
    gs::checkScatterAddElements(hasBase, x.dt, shape, is, upd.dt, axis);
    out = allocOut(*this, info.Env(), upd.dt, gs::numel(shape), res);
  }
  void run() override { gs::scatterAddElements(x, hasBase, shape, ind, is, upd, axis, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &ind, &upd, &out}; }
};

struct RollTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  std::vector<int64_t> shifts;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    shifts = intListArg(info, 2, "shifts");
    gs::planRoll(shape, shifts);
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::roll(x, shape, shifts, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct TriangleTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  int64_t k = 0;
  bool upper = true;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    k = intArg(info, 2, "k");
    upper = boolArg(info, 3, "upper");
    gs::checkTriangle(shape);
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::triangle(x, shape, k, upper, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct SortIndicesTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  int64_t axis = 0, k = 0;
  bool descending = false;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    axis = intArg(info, 2, "axis");
    descending = boolArg(info, 3, "descending");
    k = intArg(info, 4, "k");
    gs::Shape os = gs::planSortIndices(x.dt, shape, axis, k);
    out = allocOut(*this, info.Env(), gs::DType::I64, gs::numel(os), res);
  }
  void run() override { gs::sortIndices(x, shape, axis, descending, k, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};
}  // namespace

void registerRearrange(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<ScatterAddElementsTask>(env, sync, async, "scatterAddElements");
  define<RollTask>(env, sync, async, "roll");
  define<TriangleTask>(env, sync, async, "triangle");
  define<SortIndicesTask>(env, sync, async, "sortIndices");
}

}  // namespace gsb
