// reduce, argReduce, softmax, matmul
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

struct ReduceTask : Task {
  gs::ReduceOp op;
  gs::Arr x, out;
  gs::Shape shape, os;
  std::vector<int64_t> axes;
  Held res;
  void parse(const Args& info) override {
    std::string name = stringArg(info, 0, "op");
    if (!gs::parseReduceOp(name, op)) invalid("unknown reduce op '" + name + "'");
    x = arrayArg(*this, info, 1, "x");
    shape = shapeArg(info, 2, "shape");
    checkLength(x, shape, "x");
    axes = intListArg(info, 3, "axes");
    os = gs::planReduce(op, x.dt, shape, axes);
    out = allocOut(*this, info.Env(), x.dt, gs::numel(os), res);
  }
  void run() override { gs::reduce(op, x, shape, axes, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct ArgReduceTask : Task {
  bool isMax = true;
  gs::Arr x, out;
  gs::Shape shape;
  int64_t axis = -1;
  Held res;
  void parse(const Args& info) override {
    std::string name = stringArg(info, 0, "op");
    gs::ArgReduceOp op;
    if (!gs::parseArgReduceOp(name, op)) invalid("unknown arg-reduce op '" + name + "'");
    isMax = op == gs::ArgReduceOp::ArgMax;
    x = arrayArg(*this, info, 1, "x");
    shape = shapeArg(info, 2, "shape");
    checkLength(x, shape, "x");
    if (info.Length() < 4) invalid("missing argument axis");
    if (!isNullish(info, 3)) {
      axis = intArg(info, 3, "axis");
      if (axis < 0) invalid("axis must be normalized (non-negative)");
    }
    gs::Shape os = gs::planArgReduce(x.dt, shape, axis);
    out = allocOut(*this, info.Env(), gs::DType::I64, gs::numel(os), res);
  }
  void run() override { gs::argReduce(isMax, x, shape, axis, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct SoftmaxTask : Task {
  gs::Arr x, out;
  gs::Shape shape;
  int64_t axis = 0;
  bool log = false;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    shape = shapeArg(info, 1, "shape");
    checkLength(x, shape, "x");
    axis = intArg(info, 2, "axis");
    log = boolArg(info, 3, "log");
    gs::checkSoftmax(x.dt, shape, axis);
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::softmax(x, shape, axis, log, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct MatmulTask : Task {
  gs::Arr a, b, out;
  gs::Shape as, bs;
  bool ta = false, tb = false;
  gs::MatmulPlan plan;
  Held res;
  void parse(const Args& info) override {
    a = arrayArg(*this, info, 0, "a");
    as = shapeArg(info, 1, "aShape");
    b = arrayArg(*this, info, 2, "b");
    bs = shapeArg(info, 3, "bShape");
    ta = boolArg(info, 4, "transA");
    tb = boolArg(info, 5, "transB");
    checkLength(a, as, "a");
    checkLength(b, bs, "b");
    plan = gs::planMatmul(a.dt, as, b.dt, bs, ta, tb);
    out = allocOut(*this, info.Env(), a.dt, gs::numel(plan.out), res);
  }
  void run() override { gs::matmul(a, as, b, bs, ta, tb, plan, out); }
  Napi::Value result(Napi::Env env) override { return shaped(env, res, plan.out); }
  void arrays(ArrList& v) override { v = {&a, &b, &out}; }
};
}  // namespace

void registerReductions(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<ReduceTask>(env, sync, async, "reduce");
  define<ArgReduceTask>(env, sync, async, "argReduce");
  define<SoftmaxTask>(env, sync, async, "softmax");
  define<MatmulTask>(env, sync, async, "matmul");
}

}  // namespace gsb
