// How many cores other processes leave to this one: the thread choices of native/gemm.cpp grant a kernel no more
// threads than that.
#pragma once

namespace gs {

// Cores (up to `most`) this process can use without competing with other processes: the machine's CPUs (as /proc/stat
// counts them, the whole host's in a container) minus the cores other processes kept busy over the last sampling
// window (at least ~0.2 s: /proc/stat counts in 10 ms ticks), but no more than the threads of other processes
// runnable at the moment of the call (/proc/loadavg minus ownRunnableThreads()), rounded, at most `most` and at least
// 1. A window that would reach back past an idle spell (over 0.4 s since the last sample) counts no other process.
// `most` itself when the load cannot be read (no /proc/stat), and with GRADSERVE_LOAD_AWARE=0.
int usableCores(int most);

// This process's threads runnable at this instant (state R in /proc/self/task/*/stat), the calling one included; 1
// when unreadable.
int ownRunnableThreads();

}  // namespace gs
