// The helper threads behind parallelFor (native/parallel.h): created on first use, kept for the life of the process,
// and spinning for a short while after each loop before they sleep.
//
// Why keep them: on a VM whose idle vCPUs halt, a thread created (or woken) for each split product waited 0.6-1.5 ms
// before it ran, often until the caller's own part had finished, so a 1024x784x256 product split in two took 4.4 ms
// from a libuv thread against 2.9 ms from the main thread, and no less than on one thread. A helper that is still
// spinning when the next loop starts takes its part at once; one that has gone to sleep costs one wake-up, as a new
// thread did.
//
// How long they keep polling follows the loops: while loops come within kMaxSpin of each other (the split products of
// a program, separated by single-threaded steps), helpers poll across the longest of the last few gaps, yielding the
// core to any other thread that wants it; after a longer pause they poll kSpin only. inv of n = 256 forward and
// backward (a 1-thread LU and inverse, ~2.5 ms, then two split 256^3 products), in 100 ms bursts after 300 ms idle:
// with a fixed 1 ms the helper slept through every LU and each burst's first 50 ms ran at 5.7-6.9 ms a step, its rest
// at 3.9-4.4 ms; polling across the gap, 3.3-4.0 ms from a burst's first step.
#include "parallel.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GS_CPU_RELAX() _mm_pause()
#else
#define GS_CPU_RELAX() ((void)0)
#endif

namespace gs::detail {

namespace {

// How long a helper keeps polling for the next loop after finishing one (and how long the caller polls for helpers
// to finish before it sleeps). Consecutive steps of a program, and consecutive calls a client makes, follow each
// other within this; a helper with nothing to do for longer sleeps on the condition variable. About what OpenMP
// runtimes spin before they sleep. A loop is only split when a core is idle, so the polling mostly uses a core nothing
// else wanted; after an idle spell, 300 us left the second vCPU parked on this VM (a conv2d split over images, called
// back to back after 150 ms idle: 25-32 ms a call against 17-22 ms without the pause; 20-28 ms at 1 ms).
constexpr auto kSpin = std::chrono::microseconds(1000);
// The longest gap between two loops that helpers poll across (yielding), and how many recent gaps they cover.
constexpr auto kMaxSpin = std::chrono::microseconds(5000);
constexpr int kGaps = 4;
// More helpers than this are never kept (a loop asking for more gets its extra workers as threads of its own).
constexpr int kMaxHelpers = 256;

class HelperPool {
 public:
  // Runs loop(1 .. workers - 1) on helpers and loop(0) here; false when another loop has the helpers.
  bool run(int workers, const std::function<void(int)>& loop) {
    std::unique_lock<std::mutex> owner(busy_, std::try_to_lock);
    if (!owner.owns_lock() || workers - 1 > kMaxHelpers) return false;
    if (!ensureHelpers(workers - 1)) return false;
    pollFor(std::chrono::steady_clock::now());
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &loop;
      jobWorkers_ = workers;
      pending_.store(workers - 1, std::memory_order_relaxed);
      seq_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    // The caller's part; loop bodies catch their own exceptions (parallelFor's loop does), so the helpers always
    // finish before `loop` goes out of scope.
    loop(0);
    const auto until = std::chrono::steady_clock::now() + kSpin;
    while (pending_.load(std::memory_order_acquire) > 0 && std::chrono::steady_clock::now() < until) GS_CPU_RELAX();
    if (pending_.load(std::memory_order_acquire) > 0) {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    lastEnd_ = std::chrono::steady_clock::now();
    return true;
  }

 private:
  using Clock = std::chrono::steady_clock;

  // Sets how long helpers poll after the loop starting at `start`: across the longest of the last kGaps gaps between
  // loops (1.25x, at most kMaxSpin) while loops keep coming within kMaxSpin of each other, else kSpin. Under busy_.
  void pollFor(Clock::time_point start) {
    const auto gap = start - lastEnd_;
    if (gap > kMaxSpin) {
      gapsKept_ = nextGap_ = 0;
    } else {
      gaps_[size_t(nextGap_)] = gap;
      nextGap_ = (nextGap_ + 1) % kGaps;
      gapsKept_ = std::min(gapsKept_ + 1, kGaps);
    }
    Clock::duration longest = Clock::duration::zero();
    for (int i = 0; i < gapsKept_; i++) longest = std::max(longest, gaps_[size_t(i)]);
    const auto poll = std::clamp<Clock::duration>(longest + longest / 4, kSpin, kMaxSpin);
    pollUs_.store(std::chrono::duration_cast<std::chrono::microseconds>(poll).count(), std::memory_order_relaxed);
  }

  bool ensureHelpers(int n) {
    while (int(threads_) < n) {
      const int index = int(threads_) + 1;
      try {
        std::thread(&HelperPool::helper, this, index, seq_.load(std::memory_order_acquire)).detach();
      } catch (const std::system_error&) {
        return false;
      }
      threads_++;
    }
    return true;
  }

  void helper(int index, uint64_t seen) {
    for (;;) {
      const auto t0 = Clock::now();
      const auto until = t0 + kSpin, yieldUntil = t0 + std::chrono::microseconds(pollUs_.load(std::memory_order_relaxed));
      while (seq_.load(std::memory_order_acquire) == seen && Clock::now() < until) GS_CPU_RELAX();
      // past kSpin, poll between yields: another runnable thread on this core gets it
      while (seq_.load(std::memory_order_acquire) == seen && Clock::now() < yieldUntil) std::this_thread::yield();
      const std::function<void(int)>* job;
      int workers;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return seq_.load(std::memory_order_acquire) != seen; });
        seen = seq_.load(std::memory_order_acquire);
        job = job_;
        workers = jobWorkers_;
      }
      if (index >= workers) continue;
      (*job)(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);  // the caller checks pending_ under mu_ before it waits
        done_.notify_one();
      }
    }
  }

  std::mutex busy_;  // held by the one loop using the helpers
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> seq_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int)>* job_ = nullptr;  // guarded by mu_
  int jobWorkers_ = 0;                              // guarded by mu_
  size_t threads_ = 0;                              // guarded by busy_
  Clock::time_point lastEnd_{};                     // guarded by busy_: when the last loop returned
  std::array<Clock::duration, kGaps> gaps_{};       // guarded by busy_: the last gaps between loops
  int nextGap_ = 0, gapsKept_ = 0;                  // guarded by busy_: where the next gap goes, how many are kept
  std::atomic<int64_t> pollUs_{kSpin.count()};      // how long helpers poll after a loop
};

}  // namespace

bool runOnHelpers(int workers, const std::function<void(int)>& loop) {
  // Never destroyed: its threads are detached and live as long as the process.
  static HelperPool* pool = new HelperPool();
  return pool->run(workers, loop);
}

}  // namespace gs::detail
