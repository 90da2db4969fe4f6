// Other processes' CPU use, from /proc/stat (all CPUs' busy ticks, steal included) minus this process's own CPU time
// over the same window. A second thread pays only where a core is idle: on a 2-core machine where another process
// keeps one core busy, each split product waits for its part on the shared core, and gradserve at 2 threads measured
// slower than at 1 (the transformer block 129.6 against 109.0 ms a step at load 4.5), as PyTorch's and OpenBLAS's own
// threads do (PyTorch at 2 threads 3-5x slower than at 1 under such load). GNU OpenMP's OMP_DYNAMIC makes the same
// choice from the load average, which counts this process's own threads too; the tick counts separate them.
//
// The window looks back: a process that has been idle for a while (between requests, or between the segments of an
// interleaved benchmark) would judge its next kernels by load that has already stopped. So when the window says other
// processes kept cores busy, the number of threads runnable at this instant (/proc/loadavg) is the second witness:
// the busy cores counted are at most the threads runnable now besides this process's own. A process that keeps a
// core busy is runnable at nearly every instant, so steady load is still seen; load that has ended is not. This
// process's own runnable threads are counted from /proc/self/task, not assumed to be the calling one alone: a helper
// thread still polling after the previous loop is runnable too. And a window that would reach back past an idle
// spell longer than kStaleSeconds is not taken at all: the decisions of the first window after it count no other
// process (a steady neighbour costs that one window at most). A 3x3 conv (64 channels, 32x32, batch 32) in segments
// of 8 steps after a neighbour's 2-thread burst had 18 of 32 steps held at one thread (33 ms against 17) when the
// estimate came from a window spanning the burst.
#include "idle_cores.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

namespace gs {

namespace {
// Shortest window the estimate is taken over; a decision inside it reuses the last estimate.
constexpr double kWindowSeconds = 0.2;
// A previous sample older than this says nothing about now (the window would cover a neighbour's burst that has
// ended, as between the segments of an interleaved benchmark): a new window starts, and until it is complete no other
// process is counted. (The threads runnable at the instant are no witness on their own: with no other process busy,
// some other thread on the machine was runnable at 4 of every 10 instants, a client reading its answer, a kernel
// thread.)
constexpr double kStaleSeconds = 2 * kWindowSeconds;

bool loadAware() {
  static const bool on = [] {
    const char* env = std::getenv("GRADSERVE_LOAD_AWARE");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  return on;
}

// Busy CPU seconds of all processes since boot (user, nice, system, irq, softirq, steal), or a negative value.
double busySeconds() {
  static const double tick = double(sysconf(_SC_CLK_TCK));
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return -1;
  unsigned long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int got = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                              &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (got < 4 || tick <= 0) return -1;
  // user nice system idle iowait irq softirq steal: all but idle and iowait
  return double(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;
}

// Threads runnable at this instant on the whole machine, the calling one included (the numerator of /proc/loadavg's
// fourth field), or -1.
int runnableNow() {
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return -1;
  double l1 = 0, l5 = 0, l15 = 0;
  int running = -1, total = 0;
  const int got = std::fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total);
  std::fclose(f);
  return got == 5 ? running : -1;
}

double ownSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Sampler {
  std::mutex mu;
  double wall = 0, busy = 0, own = 0;  // the last sample
  double others = 0;                   // cores other processes used over the last window
  bool sampled = false, unreadable = false;

  double othersBusy() {
    std::lock_guard<std::mutex> lock(mu);
    const double now = wallSeconds();
    if (unreadable || (sampled && now - wall < kWindowSeconds)) return others;
    const double b = busySeconds();
    if (b < 0) {
      unreadable = true;
      others = 0;
      return others;
    }
    const double o = ownSeconds();
    others = sampled && now - wall <= kStaleSeconds ? std::max(0.0, ((b - busy) - (o - own)) / (now - wall)) : 0.0;
    wall = now;
    busy = b;
    own = o;
    sampled = true;
    return others;
  }
};
}  // namespace

// CPUs /proc/stat counts (its cpuN lines): the whole host's, also inside a container limited to fewer, so other
// processes' busy cores are taken from this count, not from `most`; 0 when unreadable.
int statCpus() {
  static const int n = [] {
    FILE* f = std::fopen("/proc/stat", "r");
    if (f == nullptr) return 0;
    int count = 0;
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "cpu", 3) == 0 && line[3] >= '0' && line[3] <= '9') count++;
      // A line longer than the buffer continues in the next read: skip to its end.
      while (std::strchr(line, '\n') == nullptr && std::fgets(line, sizeof line, f) != nullptr) {}
    }
    std::fclose(f);
    return count;
  }();
  return n;
}

int ownRunnableThreads() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return 1;
  int n = 0;
  char path[64], buf[512];
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::snprintf(path, sizeof path, "/proc/self/task/%.32s/stat", e->d_name);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) continue;
    const size_t k = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[k] = 0;
    // "tid (comm) S ...": the state follows the last ')' (a thread name may hold parentheses)
    const char* p = std::strrchr(buf, ')');
    if (p != nullptr && p[1] == ' ' && p[2] == 'R') n++;
  }
  closedir(d);
  return std::max(n, 1);
}

int usableCores(int most) {
  if (most <= 1 || !loadAware()) return most;
  static Sampler* s = new Sampler();
  // Cores left idle on the whole machine (a container on a large host sees every host CPU in /proc/stat).
  const double cpus = double(std::max(statCpus(), most));
  double others = s->othersBusy();
  if (others >= 0.5) {
    const int now = runnableNow();
    if (now >= 1) others = std::min(others, double(std::max(0, now - ownRunnableThreads())));
  }
  const double left = cpus - others;
  return std::max(1, std::min(most, int(std::lround(left))));
}

}  // namespace gs
