// One parallel loop for the kernels that split independent items (images of a convolution, matrices of a batch)
// across threads of their own: body(worker, i) for every i < count, `workers` threads in all (this one included).
#pragma once
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace gs {

namespace detail {
// Runs loop(1) .. loop(workers - 1) on the process's helper threads and loop(0) on the caller, and returns once all
// have returned (native/parallel.cpp); false, running nothing, when another loop is using the helpers. `loop` must not
// throw.
bool runOnHelpers(int workers, const std::function<void(int)>& loop);
}  // namespace detail

// When bodies throw, the exception of the lowest failing index is rethrown (the same error whichever thread met it
// first, as a sequential loop would give), and no index above it is started. The other workers are the process's
// helper threads (kept between loops), or threads of the loop's own while another loop has the helpers. Fewer threads
// than asked run the loop when the system has no more to give.
template <typename F> void parallelFor(int64_t count, int workers, F&& body) {
  if (workers <= 1 || count <= 1) {
    for (int64_t i = 0; i < count; i++) body(0, i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> failedAt{count};
  std::exception_ptr error;
  std::mutex mu;
  auto loop = [&](int worker) {
    for (int64_t i; (i = next.fetch_add(1)) < count;) {
      if (i > failedAt.load()) break;
      try {
        body(worker, i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < failedAt.load()) {
          failedAt.store(i);
          error = std::current_exception();
        }
      }
    }
  };
  if (detail::runOnHelpers(workers, loop)) {
    if (error) std::rethrow_exception(error);
    return;
  }
  // the helpers are busy with another loop: threads of this loop's own
  std::vector<std::thread> threads;
  for (int w = 1; w < workers; w++) {
    try {
      threads.emplace_back(loop, w);
    } catch (const std::system_error&) {
      break;
    }
  }
  loop(0);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace gs
