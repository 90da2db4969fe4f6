#include "pool.h"

#include <cstdlib>
#include <cstring>
#include <new>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace gsb {

void adviseHugePages(void* data, size_t bytes);  // args.cc

namespace {
alignas(64) unsigned char dummy[64];
constexpr size_t kDefaultCap = size_t(256) << 20;
}  // namespace

BufferPool::BufferPool() {
  st_.capBytes = kDefaultCap;
  const char* env = std::getenv("GRADSERVE_POOL_BYTES");
  if (env && *env) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(env, &end, 10);
    if (end && *end == '\0') st_.capBytes = size_t(v);
  }
}

BufferPool& BufferPool::instance() {
  static BufferPool* pool = new BufferPool();  // never destroyed: worker threads may still release at exit
  return *pool;
}

// Sizes are rounded so that near-equal requests share buffers: 64 bytes below 64 KiB, then 4 KiB pages.
size_t BufferPool::roundUp(size_t bytes) {
  const size_t q = bytes < (size_t(64) << 10) ? 64 : 4096;
  return (bytes + q - 1) / q * q;
}

void* BufferPool::acquire(size_t bytes) {
  if (bytes == 0) return dummy;
  const size_t size = roundUp(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      st_.cachedBytes -= size;
      st_.liveBytes += size;
      st_.hits++;
      return p;
    }
    st_.misses++;
  }
  void* p = std::aligned_alloc(64, size);
  if (p == nullptr) throw std::bad_alloc();
  adviseHugePages(p, size);
  std::lock_guard<std::mutex> lock(mu_);
  st_.liveBytes += size;
  return p;
}

void BufferPool::release(void* p, size_t bytes) {
  if (p == nullptr || p == dummy) return;
  const size_t size = roundUp(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    st_.liveBytes -= size;
    if (st_.cachedBytes + size <= st_.capBytes) {
      free_[size].push_back(p);
      st_.cachedBytes += size;
      return;
    }
  }
  std::free(p);
}

void BufferPool::trim() {
  std::unordered_map<size_t, std::vector<void*>> drop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    drop.swap(free_);
    st_.cachedBytes = 0;
  }
  for (auto& kv : drop)
    for (void* p : kv.second) std::free(p);
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

void BufferPool::setCap(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    st_.capBytes = bytes;
    if (st_.cachedBytes <= bytes) return;
  }
  trim();
}

PoolStats BufferPool::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return st_;
}

}  // namespace gsb
