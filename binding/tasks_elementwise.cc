// unary, binary, where, clip
#include "../native/kernels.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

struct UnaryTask : Task {
  gs::UnaryOp op;
  gs::Arr x, out;
  double param = 0;
  Held res;
  void parse(const Args& info) override {
    std::string name = stringArg(info, 0, "op");
    if (!gs::parseUnaryOp(name, op)) invalid("unknown unary op '" + name + "'");
    x = arrayArg(*this, info, 1, "x");
    if (!isNullish(info, 2)) param = numberArg(info, 2, "param");
    gs::checkUnary(op, x.dt);
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::unary(op, x, out, param); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};

struct BinaryTask : Task {
  gs::BinaryOp op;
  gs::Arr a, b, out;
  gs::Shape as, bs;
  gs::BinaryPlan plan;
  Held res;
  void parse(const Args& info) override {
    std::string name = stringArg(info, 0, "op");
    if (!gs::parseBinaryOp(name, op)) invalid("unknown binary op '" + name + "'");
    a = arrayArg(*this, info, 1, "a");
    as = shapeArg(info, 2, "aShape");
    b = arrayArg(*this, info, 3, "b");
    bs = shapeArg(info, 4, "bShape");
    checkLength(a, as, "a");
    checkLength(b, bs, "b");
    plan = gs::planBinary(op, a.dt, as, b.dt, bs);
    out = allocOut(*this, info.Env(), plan.outDt, gs::numel(plan.out), res);
  }
  void run() override { gs::binary(op, a, as, b, bs, plan.out, out); }
  Napi::Value result(Napi::Env env) override { return shaped(env, res, plan.out); }
  void arrays(ArrList& v) override { v = {&a, &b, &out}; }
};

struct WhereTask : Task {
  gs::Arr c, a, b, out;
  gs::Shape cs, as, bs, os;
  Held res;
  void parse(const Args& info) override {
    c = arrayArg(*this, info, 0, "cond");
    if (c.dt != gs::DType::BOOL) invalid("cond must be a Uint8Array (BOOL)");
    cs = shapeArg(info, 1, "condShape");
    a = arrayArg(*this, info, 2, "a");
    as = shapeArg(info, 3, "aShape");
    b = arrayArg(*this, info, 4, "b");
    bs = shapeArg(info, 5, "bShape");
    checkLength(c, cs, "cond");
    checkLength(a, as, "a");
    checkLength(b, bs, "b");
    os = gs::planWhere(cs, a.dt, as, b.dt, bs);
    out = allocOut(*this, info.Env(), a.dt, gs::numel(os), res);
  }
  void run() override { gs::where(c, cs, a, as, b, bs, os, out); }
  Napi::Value result(Napi::Env env) override { return shaped(env, res, os); }
  void arrays(ArrList& v) override { v = {&c, &a, &b, &out}; }
};

struct ClipTask : Task {
  gs::Arr x, out;
  gs::ClipBounds bounds;
  Held res;
  void parse(const Args& info) override {
    x = arrayArg(*this, info, 0, "x");
    if (info.Length() < 3) invalid("clip needs (x, min, max)");
    if (!isNullish(info, 1)) { bounds.hasMin = true; bounds.min = numberArg(info, 1, "min"); }
    if (!isNullish(info, 2)) { bounds.hasMax = true; bounds.max = numberArg(info, 2, "max"); }
    gs::checkClip(x.dt, bounds);
    out = allocOut(*this, info.Env(), x.dt, x.n, res);
  }
  void run() override { gs::clip(x, bounds, out); }
  Napi::Value result(Napi::Env) override { return res.get(); }
  void arrays(ArrList& v) override { v = {&x, &out}; }
};
}  // namespace

void registerElementwise(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<UnaryTask>(env, sync, async, "unary");
  define<BinaryTask>(env, sync, async, "binary");
  define<WhereTask>(env, sync, async, "where");
  define<ClipTask>(env, sync, async, "clip");
}

}  // namespace gsb
