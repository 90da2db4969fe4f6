"""Shared by the PyTorch peers of bench/engine and bench/http: one thread setting per process, timed steps on demand.

The peer's thread setting is applied as `torch.set_num_threads(n)`; the parent also starts the process with
OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS = n, because Debian's torch runs its matmuls in OpenBLAS,
whose thread count torch.set_num_threads does not change.

  serve(step, name): prints one JSON line {"ready": true, "threads", "version", "name"}, then for every line "N" read
  from stdin runs 2 unmeasured steps and N timed ones and prints {"times": [ms, ...], "cpu": ms} (cpu: the process's
  CPU time over the N steps, every thread); exits at end of input.
  oneshot(step, reps): prints {"ms": median, "p99": ..., "threads", "version"} (for running a peer by hand).
"""
import json
import math
import statistics
import sys
import time

import torch


def _timed(step, n):
    """Times of n steps (after 2 unmeasured ones) in ms, and the process's CPU time over those n steps in ms."""
    for _ in range(2):
        step()
    out = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        out.append((time.perf_counter() - t0) * 1e3)
    return out, (time.process_time() - cpu0) * 1e3


def _times(step, n):
    return _timed(step, n)[0]


def set_threads(threads):
    torch.set_num_threads(threads)


def serve(step, name):
    print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "version": torch.__version__, "name": name}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        times, cpu = _timed(step, int(line))
        print(json.dumps({"times": times, "cpu": cpu}), flush=True)


def oneshot(step, reps):
    ts = sorted(_times(step, reps))
    p99 = ts[min(len(ts) - 1, math.ceil(0.99 * len(ts)) - 1)]
    print(json.dumps({"ms": statistics.median(ts), "p99": p99, "threads": torch.get_num_threads(), "version": torch.__version__}))


def main(step, name, argv_rest):
    """`--serve` or `reps` (one-shot) after the workload's own arguments."""
    if argv_rest and argv_rest[0] == "--serve":
        serve(step, name)
    else:
        oneshot(step, int(argv_rest[0]) if argv_rest else 20)
