// Shared vocabulary of the gradserve kernels: datatypes, typed errors, shapes and flat array views.
// Pure C++17: no Node headers, so the kernels can be tested and reused without a JS engine.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace gs {

enum class DType : uint8_t { F32, F64, I32, I64, BOOL };
const char* dtypeName(DType dt);
bool parseDType(const std::string& s, DType& out);
size_t dtypeSize(DType dt);
inline bool isFloat(DType dt) { return dt == DType::F32 || dt == DType::F64; }
inline bool isInt(DType dt) { return dt == DType::I32 || dt == DType::I64; }

// SingularMatrix, NotPositiveDefinite: found by the linear-algebra kernels while running; Unsupported: a kernel this
// build lacks (no LAPACK); NoConvergence: LAPACK's iteration did not converge (native/linalg_spectral.cpp).
enum class ErrCode : uint8_t {
  InvalidArgument, IndexOutOfRange, InvalidCast, Cancelled, SingularMatrix, NotPositiveDefinite, Unsupported, NoConvergence,
};
const char* errCodeName(ErrCode c);

// Every argument or data problem leaves the kernels as a KernelError; the binding maps `code` to the JS error code.
struct KernelError : std::runtime_error {
  ErrCode code;
  KernelError(ErrCode c, const std::string& msg) : std::runtime_error(msg), code(c) {}
};
[[noreturn]] void fail(ErrCode c, const std::string& msg);
[[noreturn]] inline void invalid(const std::string& msg) { fail(ErrCode::InvalidArgument, msg); }

using Shape = std::vector<int64_t>;
std::string fmtShape(const Shape& s);

// Largest element count any tensor may have: keeps every byte offset far inside int64 and size_t.
constexpr int64_t kMaxElements = int64_t(1) << 48;

// Product of dims; throws INVALID_ARGUMENT on negative dims or when the product exceeds kMaxElements.
int64_t numel(const Shape& s, const char* what = "shape");
Shape contiguousStrides(const Shape& s);

// NumPy broadcasting of any number of shapes; throws INVALID_ARGUMENT when incompatible.
Shape broadcastShapes(const std::vector<const Shape*>& shapes);
// Element strides of `s` (contiguous) seen through broadcasting to `out` (0 on broadcast dims).
Shape broadcastStrides(const Shape& s, const Shape& out);

// A flat array of one datatype. Inputs and outputs are both plain views: the binding owns the memory.
struct Arr {
  DType dt = DType::F32;
  void* data = nullptr;
  int64_t n = 0;
  // The buffer slot of a native program this view is bound to before each run (-1: a fixed buffer).
  int32_t slot = -1;
  template <typename T> T* as() const { return static_cast<T*>(data); }
};

// Calls f(T{}) with the C++ element type of dt.
template <typename F> decltype(auto) dispatch(DType dt, F&& f) {
  switch (dt) {
    case DType::F32: return f(float{});
    case DType::F64: return f(double{});
    case DType::I32: return f(int32_t{});
    case DType::I64: return f(int64_t{});
    case DType::BOOL: default: return f(uint8_t{});
  }
}

template <typename T> constexpr bool kIsFloat = std::is_floating_point<T>::value;

// Drops size-1 dims and merges dims that are contiguous for every stride set; keeps loops short and inner runs long.
// All stride vectors are indexed like `shape`; the result always has rank >= 1.
void collapseDims(Shape& shape, std::vector<Shape*> strides);

}  // namespace gs
