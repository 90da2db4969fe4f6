// linear algebra, solves and factorizations: matrixOp (inv, cholesky, det, logabsdet, cofactor), triangularSolve,
// solve, lstsq (native/linalg_solve.h)
#include "../native/linalg_solve.h"
#include "args.h"
#include "tasks.h"

namespace gsb {
namespace {
using gs::invalid;

struct MatrixOpTask : Task {
  gs::MatrixOp op;
  gs::Arr a, out;
  gs::Shape shape, outShape;
  Held res;
  void parse(const Args& info) override {
    std::string name = stringArg(info, 0, "op");
    if (!gs::parseMatrixOp(name, op)) invalid("unknown matrix op '" + name + "'");
    a = arrayArg(*this, info, 1, "a");
    shape = shapeArg(info, 2, "shape");
    checkLength(a, shape, "a");
    outShape = gs::planMatrixOp(op, a.dt, shape);
    out = allocOut(*this, info.Env(), a.dt, gs::numel(outShape), res);
  }
  void run() override { gs::matrixOp(op, a, shape, out); }
  bool factorsLu() const override {
    return op == gs::MatrixOp::Inv || op == gs::MatrixOp::Det || op == gs::MatrixOp::LogAbsDet ||
           op == gs::MatrixOp::Cofactor;
  }
  Napi::Value result(Napi::Env env) override { return shaped(env, res, outShape); }
  void arrays(ArrList& v) override { v = {&a, &out}; }
};

// The two-operand kernels share their arguments: a, aShape, b, bShape, then flags.
struct TwoOperandTask : Task {
  gs::Arr a, b, out;
  gs::Shape as, bs, outShape;
  Held res;
  void operands(const Args& info) {
    a = arrayArg(*this, info, 0, "a");
    as = shapeArg(info, 1, "aShape");
    b = arrayArg(*this, info, 2, "b");
    bs = shapeArg(info, 3, "bShape");
    checkLength(a, as, "a");
    checkLength(b, bs, "b");
  }
  void allocate(const Args& info) { out = allocOut(*this, info.Env(), a.dt, gs::numel(outShape), res); }
  Napi::Value result(Napi::Env env) override { return shaped(env, res, outShape); }
  void arrays(ArrList& v) override { v = {&a, &b, &out}; }
};

struct TriangularSolveTask : TwoOperandTask {
  bool lower = true, unit = false, left = true;
  void parse(const Args& info) override {
    operands(info);
    lower = boolArg(info, 4, "lower");
    unit = boolArg(info, 5, "unitDiagonal");
    left = boolArg(info, 6, "left");
    outShape = gs::planTriangularSolve(a.dt, as, b.dt, bs, left);
    allocate(info);
  }
  void run() override { gs::triangularSolve(a, as, b, bs, lower, unit, left, outShape, out); }
};

struct SolveTask : TwoOperandTask {
  bool transA = false;
  void parse(const Args& info) override {
    operands(info);
    transA = boolArg(info, 4, "transA");
    outShape = gs::planSolve(a.dt, as, b.dt, bs);
    allocate(info);
  }
  void run() override { gs::solve(a, as, b, bs, transA, outShape, out); }
  bool factorsLu() const override { return true; }
};

struct LstsqTask : TwoOperandTask {
  void parse(const Args& info) override {
    operands(info);
    outShape = gs::planLstsq(a.dt, as, b.dt, bs);
    allocate(info);
  }
  void run() override { gs::lstsq(a, as, b, bs, outShape, out); }
};
}  // namespace

void registerLinalgSolve(Napi::Env env, Napi::Object sync, Napi::Object async) {
  define<MatrixOpTask>(env, sync, async, "matrixOp");
  define<TriangularSolveTask>(env, sync, async, "triangularSolve");
  define<SolveTask>(env, sync, async, "solve");
  define<LstsqTask>(env, sync, async, "lstsq");
}

}  // namespace gsb
