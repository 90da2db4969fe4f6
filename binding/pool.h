// Native memory for the intermediates of program runs: buffers are reused across runs and requests (a repeated
// request finds the exact sizes it freed last time) instead of being fresh allocations that V8 must account for and
// collect. The pool keeps at most `capBytes` of free buffers; anything beyond is returned to the allocator at once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace gsb {

struct PoolStats {
  size_t liveBytes = 0;    // handed out and not yet released
  size_t cachedBytes = 0;  // free, kept for reuse
  size_t capBytes = 0;
  uint64_t hits = 0, misses = 0;
};

class BufferPool {
 public:
  static BufferPool& instance();
  // A 64-byte aligned buffer of at least `bytes` (never null; zero bytes gives a shared dummy). Throws bad_alloc.
  void* acquire(size_t bytes);
  void release(void* p, size_t bytes);
  // Frees every cached buffer and returns freed heap pages to the system.
  void trim();
  void setCap(size_t bytes);
  PoolStats stats();

 private:
  BufferPool();
  static size_t roundUp(size_t bytes);
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  PoolStats st_;
};

}  // namespace gsb
