// How many cores other processes leave to this one: the thread choices of native/gemm.cpp grant a kernel no more
// threads than that.
#pragma once

namespace gs {

// Cores (up to `most`) this process can use without competing with other processes: the machine's CPUs (as /proc/stat
// counts them, the whole host's in a container) minus the cores other processes kept busy over the last sampling
// window (at least ~0.2 s: /proc/stat counts in 10 ms ticks), but no more than the other threads runnable at the
// moment of the call (/proc/loadavg), rounded, at most `most` and at least 1. `most` itself when the load cannot be read (no /proc/stat), and with GRADSERVE_LOAD_AWARE=0.
int usableCores(int most);

}  // namespace gs
