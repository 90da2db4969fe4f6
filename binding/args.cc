#include "args.h"

#include "program.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace gsb {

using gs::invalid;

Napi::Error makeError(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

namespace {
constexpr double kMaxSafe = 9007199254740991.0;
constexpr size_t kMaxRank = 64;

Napi::Value at(const Args& info, size_t i, const char* name) {
  if (i >= info.Length()) invalid(std::string("missing argument ") + name);
  return info[i];
}
}  // namespace

namespace {
bool isResizable(napi_env env, napi_value buffer) {
  napi_value r;
  bool yes = false;
  // A throwing `resizable` getter leaves its exception pending, which errorFor() then reports.
  if (napi_get_named_property(env, buffer, "resizable", &r) != napi_ok) invalid("cannot read the input buffer");
  napi_valuetype kind;
  return napi_typeof(env, r, &kind) == napi_ok && kind == napi_boolean && napi_get_value_bool(env, r, &yes) == napi_ok &&
         yes;
}
}  // namespace

gs::Arr arrayValue(Task& t, Napi::Value v, const std::string& name) {
  if (t.builder != nullptr && !v.IsTypedArray()) return t.builder->arrayArg(v, name);
  if (!v.IsTypedArray())
    invalid(name + " must be a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array");
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  napi_status st = napi_get_typedarray_info(v.Env(), v, &type, &length, &data, &buffer, nullptr);
  if (st != napi_ok) invalid(name + " is not a readable typed array");
  // A worker thread reads the input after this call returns; shrinking a resizable ArrayBuffer in the meantime
  // decommits the pages under it (a segfault, not an error). Only the async form is exposed: sync calls finish first.
  if (t.async && isResizable(v.Env(), buffer))
    invalid(name + " is backed by a resizable ArrayBuffer, which an async kernel cannot use (copy it, or call the sync kernel)");
  gs::Arr a;
  switch (type) {
    case napi_float32_array: a.dt = gs::DType::F32; break;
    case napi_float64_array: a.dt = gs::DType::F64; break;
    case napi_int32_array: a.dt = gs::DType::I32; break;
    case napi_bigint64_array: a.dt = gs::DType::I64; break;
    case napi_uint8_array: a.dt = gs::DType::BOOL; break;
    default: invalid(name + " must be a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array");
  }
  if (length > 0 && data == nullptr) invalid(name + " has a detached buffer");
  a.data = data;
  a.n = int64_t(length);
  if (t.builder != nullptr) return t.builder->constant(a);
  if (t.async) t.keep.push_back(Napi::Persistent(v.As<Napi::Object>()));
  return a;
}

gs::Arr arrayArg(Task& t, const Args& info, size_t i, const char* name) {
  return arrayValue(t, at(info, i, name), name);
}

namespace {
// Raw napi calls: this runs for every shape entry of every call, where node-addon-api's checked wrappers and eager
// message strings showed up in profiles of tiny kernels. Messages are only built on failure.
bool safeInt(napi_env env, napi_value v, int64_t& out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return false;
  if (!(std::fabs(d) <= kMaxSafe) || std::trunc(d) != d) return false;
  out = int64_t(d);
  return true;
}
}  // namespace

int64_t intValue(Napi::Value v, const std::string& name) {
  int64_t x;
  if (!safeInt(v.Env(), v, x)) invalid(name + " must be a safe integer");
  return x;
}

static std::vector<int64_t> intList(Napi::Value v, const char* name, bool nonNegative) {
  napi_env env = v.Env();
  bool isArray = false;
  if (napi_is_array(env, v, &isArray) != napi_ok || !isArray) invalid(std::string(name) + " must be an array of integers");
  uint32_t n = 0;
  napi_get_array_length(env, v, &n);
  if (n > kMaxRank) invalid(std::string(name) + " has more than 64 entries");
  std::vector<int64_t> out(n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    int64_t x = 0;
    bool ok = napi_get_element(env, v, k, &e) == napi_ok && safeInt(env, e, x);
    if (!ok || (nonNegative && x < 0))
      invalid(std::string(name) + "[" + std::to_string(k) + "] must be a " + (nonNegative ? "non-negative " : "") +
              "safe integer");
    out[k] = x;
  }
  return out;
}

gs::Shape shapeValue(Napi::Value v, const std::string& name) {
  gs::Shape s = intList(v, name.c_str(), true);
  gs::numel(s, name.c_str());
  return s;
}

gs::Shape shapeArg(const Args& info, size_t i, const char* name) {
  gs::Shape s = intList(at(info, i, name), name, true);
  gs::numel(s, name);
  return s;
}

std::vector<int64_t> intListArg(const Args& info, size_t i, const char* name) {
  return intList(at(info, i, name), name, false);
}

int64_t intArg(const Args& info, size_t i, const char* name) { return intValue(at(info, i, name), name); }

gs::Pads padsArg(const Args& info, size_t i, const char* name) {
  Napi::Value v = at(info, i, name);
  if (!v.IsArray()) invalid(std::string(name) + " must be an array of [before, after] pairs");
  Napi::Array arr = v.As<Napi::Array>();
  if (arr.Length() > kMaxRank) invalid(std::string(name) + " has more than 64 entries");
  gs::Pads pads;
  for (uint32_t k = 0; k < arr.Length(); k++) {
    const std::string at = std::string(name) + "[" + std::to_string(k) + "]";
    std::vector<int64_t> p = shapeValue(arr.Get(k), at);
    if (p.size() != 2) invalid(at + " must be [before, after]");
    pads.emplace_back(p[0], p[1]);
  }
  return pads;
}

double numberArg(const Args& info, size_t i, const char* name) {
  Napi::Value v = at(info, i, name);
  if (!v.IsNumber()) invalid(std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool boolArg(const Args& info, size_t i, const char* name) {
  Napi::Value v = at(info, i, name);
  if (!v.IsBoolean()) invalid(std::string(name) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string stringArg(const Args& info, size_t i, const char* name) {
  Napi::Value v = at(info, i, name);
  if (!v.IsString()) invalid(std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

bool isNullish(const Args& info, size_t i) {
  return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined();
}

void checkLength(const gs::Arr& arr, const gs::Shape& shape, const char* name) {
  int64_t n = gs::numel(shape, name);
  if (arr.n != n)
    invalid(std::string(name) + " has " + std::to_string(arr.n) + " elements but its shape " + gs::fmtShape(shape) +
            " needs " + std::to_string(n));
}

namespace {
// Large outputs come from Node's `Buffer.allocUnsafeSlow(n)`: every kernel writes its whole output, so V8's
// zero-fill would be wasted work (it cost as much as an `add`). Going through JS also turns an allocation failure
// into a RangeError instead of the process abort of napi_create_arraybuffer, and leaves freeing to V8's GC, which
// keeps tight synchronous loops from piling up finalizers. Small outputs take the cheaper direct path.
constexpr size_t kDirectBytes = 64 * 1024;

napi_typedarray_type typedArrayType(gs::DType dt) {
  switch (dt) {
    case gs::DType::F32: return napi_float32_array;
    case gs::DType::F64: return napi_float64_array;
    case gs::DType::I32: return napi_int32_array;
    case gs::DType::I64: return napi_bigint64_array;
    default: return napi_uint8_array;
  }
}
}  // namespace

// Large outputs are fresh heap memory whose first write page-faults every 4 KiB; transparent huge pages (opt-in via
// madvise on most distributions, as NumPy does for arrays >= 4 MiB) cut that 512-fold.
void adviseHugePages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  static const bool enabled = [] {
    const char* env = std::getenv("GRADSERVE_HUGEPAGES");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  if (!enabled || bytes < (size_t(4) << 20)) return;
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

// JS functions the binding calls, made once per environment.
struct JsHelpers {
  Napi::FunctionReference allocUnsafeSlow;
  // ({data, shape}) built by JS: an object literal gets its final map at once, where two napi_set_named_property
  // calls (name internalization plus a map transition each) were the largest cost of a tiny binary() call.
  Napi::FunctionReference makeShaped;
};

JsHelpers& helpers(Napi::Env env) {
  auto* h = env.GetInstanceData<JsHelpers>();
  if (h == nullptr) {
    h = new JsHelpers();
    Napi::Function f = env.Global().Get("Buffer").As<Napi::Object>().Get("allocUnsafeSlow").As<Napi::Function>();
    h->allocUnsafeSlow = Napi::Persistent(f);
    napi_value script, fn;
    napi_create_string_utf8(env, "(function makeShaped(data, shape) { return { data, shape }; })", NAPI_AUTO_LENGTH,
                            &script);
    if (napi_run_script(env, script, &fn) != napi_ok) throw Napi::Error::New(env, "cannot compile makeShaped");
    h->makeShaped = Napi::Persistent(Napi::Function(env, fn));
    env.SetInstanceData(h);
  }
  return *h;
}

Napi::Function allocUnsafeSlow(Napi::Env env) { return helpers(env).allocUnsafeSlow.Value(); }

gs::Arr allocOut(Task& t, Napi::Env env, gs::DType dt, int64_t n, Held& out) {
  if (t.builder != nullptr) return t.builder->newSlot(env, dt, n, t, out);
  if (n < 0 || n > gs::kMaxElements) invalid("output has too many elements");
  const size_t bytes = size_t(n) * gs::dtypeSize(dt);
  Napi::ArrayBuffer ab;
  if (bytes <= kDirectBytes) {
    ab = Napi::ArrayBuffer::New(env, bytes);
  } else {
    Napi::Value buf;
    try {
      buf = allocUnsafeSlow(env).Call({Napi::Number::New(env, double(bytes))});
    } catch (const Napi::Error& e) {
      invalid("cannot allocate " + std::to_string(bytes) + " bytes for the output: " + e.Message());
    }
    napi_value abv;
    size_t off = 0;
    if (!buf.IsTypedArray() ||
        napi_get_typedarray_info(env, buf, nullptr, nullptr, nullptr, &abv, &off) != napi_ok || off != 0)
      throw Napi::Error::New(env, "Buffer.allocUnsafeSlow did not return a fresh buffer");
    ab = Napi::ArrayBuffer(env, abv);
    adviseHugePages(ab.Data(), bytes);
  }
  napi_value ta;
  if (napi_create_typedarray(env, typedArrayType(dt), size_t(n), ab, 0, &ta) != napi_ok)
    throw Napi::Error::New(env, "cannot create the output typed array");
  out.set(t, Napi::Value(env, ta));
  return gs::Arr{dt, ab.Data(), n};
}

Napi::Value shapeToJs(Napi::Env env, const gs::Shape& s) {
  Napi::Array a = Napi::Array::New(env, s.size());
  for (size_t i = 0; i < s.size(); i++) a.Set(uint32_t(i), Napi::Number::New(env, double(s[i])));
  return a;
}

Napi::Value shaped(Napi::Env env, const Held& data, const gs::Shape& s) {
  napi_value args[2] = {data.get(), shapeToJs(env, s)};
  napi_value result;
  if (napi_call_function(env, env.Undefined(), helpers(env).makeShaped.Value(), 2, args, &result) != napi_ok)
    throw Napi::Error::New(env);
  return Napi::Value(env, result);
}

}  // namespace gsb
