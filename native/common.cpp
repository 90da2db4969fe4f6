#include "common.h"

#include <algorithm>

namespace gs {

const char* dtypeName(DType dt) {
  switch (dt) {
    case DType::F32: return "FP32";
    case DType::F64: return "FP64";
    case DType::I32: return "INT32";
    case DType::I64: return "INT64";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

bool parseDType(const std::string& s, DType& out) {
  static const struct { const char* name; DType dt; } table[] = {
      {"FP32", DType::F32}, {"FP64", DType::F64}, {"INT32", DType::I32}, {"INT64", DType::I64}, {"BOOL", DType::BOOL},
      {"float32", DType::F32}, {"float64", DType::F64}, {"int32", DType::I32}, {"int64", DType::I64},
      {"bool", DType::BOOL}};
  for (const auto& e : table)
    if (s == e.name) { out = e.dt; return true; }
  return false;
}

size_t dtypeSize(DType dt) {
  switch (dt) {
    case DType::F32: case DType::I32: return 4;
    case DType::F64: case DType::I64: return 8;
    case DType::BOOL: return 1;
  }
  return 1;
}

const char* errCodeName(ErrCode c) {
  switch (c) {
    case ErrCode::InvalidArgument: return "INVALID_ARGUMENT";
    case ErrCode::IndexOutOfRange: return "INDEX_OUT_OF_RANGE";
    case ErrCode::InvalidCast: return "INVALID_CAST";
    case ErrCode::Cancelled: return "CANCELLED";
    case ErrCode::SingularMatrix: return "SINGULAR_MATRIX";
    case ErrCode::NotPositiveDefinite: return "NOT_POSITIVE_DEFINITE";
    case ErrCode::Unsupported: return "UNSUPPORTED";
    case ErrCode::NoConvergence: return "NO_CONVERGENCE";
  }
  return "INVALID_ARGUMENT";
}

void fail(ErrCode c, const std::string& msg) { throw KernelError(c, msg); }

std::string fmtShape(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

int64_t numel(const Shape& s, const char* what) {
  int64_t n = 1;
  bool zero = false;
  for (int64_t d : s) {
    if (d < 0) invalid(std::string(what) + " " + fmtShape(s) + " has a negative dimension");
    if (d == 0) zero = true;
  }
  if (zero) return 0;
  for (int64_t d : s) {
    if (__builtin_mul_overflow(n, d, &n) || n > kMaxElements)
      invalid(std::string(what) + " " + fmtShape(s) + " has too many elements");
  }
  return n;
}

Shape contiguousStrides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i] == 0 ? 1 : s[i];
  }
  return st;
}

Shape broadcastShapes(const std::vector<const Shape*>& shapes) {
  size_t rank = 0;
  for (auto* s : shapes) rank = std::max(rank, s->size());
  Shape out(rank, 1);
  for (auto* s : shapes) {
    size_t off = rank - s->size();
    for (size_t i = 0; i < s->size(); i++) {
      int64_t d = (*s)[i], &o = out[off + i];
      if (d == 1) continue;
      if (o == 1) { o = d; continue; }
      if (o != d) {
        std::string msg = "shapes";
        for (auto* t : shapes) msg += " " + fmtShape(*t);
        invalid(msg + " do not broadcast");
      }
    }
  }
  return out;
}

Shape broadcastStrides(const Shape& s, const Shape& out) {
  Shape st(out.size(), 0);
  Shape cs = contiguousStrides(s);
  size_t off = out.size() - s.size();
  for (size_t i = 0; i < s.size(); i++) st[off + i] = (s[i] == 1 && out[off + i] != 1) ? 0 : cs[i];
  return st;
}

void collapseDims(Shape& shape, std::vector<Shape*> strides) {
  for (int64_t d : shape)
    if (d == 0) {
      shape.assign(1, 0);
      for (auto* st : strides) st->assign(1, 0);
      return;
    }
  Shape ns;
  std::vector<Shape> nst(strides.size());
  for (size_t i = 0; i < shape.size(); i++) {
    if (shape[i] == 1) continue;
    bool merge = !ns.empty();
    for (size_t k = 0; merge && k < strides.size(); k++)
      merge = nst[k].back() == (*strides[k])[i] * shape[i];
    if (merge) {
      ns.back() *= shape[i];
      for (size_t k = 0; k < strides.size(); k++) nst[k].back() = (*strides[k])[i];
    } else {
      ns.push_back(shape[i]);
      for (size_t k = 0; k < strides.size(); k++) nst[k].push_back((*strides[k])[i]);
    }
  }
  if (ns.empty()) {
    ns.push_back(1);
    for (auto& v : nst) v.push_back(0);
  }
  shape = ns;
  for (size_t k = 0; k < strides.size(); k++) *strides[k] = nst[k];
}

}  // namespace gs
