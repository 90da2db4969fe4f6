/**
 * The one place that loads the native addon (build/Release/gradserve.node). The path is resolved from the package
 * root, which is one level above this file both in src/ (vitest, tsx) and in dist/ (after tsc).
 *
 * Environment knobs, read once when the addon loads (all optional):
 *   GRADSERVE_ADDON=<path>        load another build (e.g. one configured with -DGRADSERVE_PORTABLE_GEMM=ON)
 *   GRADSERVE_SIMD=off|avx2       cap the run-time SIMD tier (default: the best of avx512f, avx2+fma, sse2)
 *   GRADSERVE_MALLOC_TUNING=0     keep glibc's malloc defaults (by default freed output blocks are kept for reuse)
 *   GRADSERVE_HUGEPAGES=0         no transparent-huge-page advice for outputs >= 4 MiB
 *   OPENBLAS_NUM_THREADS=<n>      most gemm threads (OpenBLAS's own variable; `info().threads` reports it)
 *   GRADSERVE_BLAS_ADAPTIVE=0     a fixed gemm thread count (by default small products and concurrent ones use one,
 *                                 and a large product is split over rows of its result across threads of gradserve's own)
 *   GRADSERVE_LOAD_AWARE=0        grant threads whatever other processes run (by default no more than the cores they
 *                                 left idle over the last ~0.2 s: native/idle_cores.cpp)
 *   OPENBLAS_THREAD_TIMEOUT=<n>   how long OpenBLAS's idle threads spin before they sleep, 2^n cycles (4-30); gradserve
 *                                 sets 4 unless given: a server between two products should not keep a core busy
 *                                 spinning (the library's default, ~0.1 s, cost ~4 ms of CPU per small MLP request on
 *                                 two cores, taken from the event loop and the other requests)
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Kernels } from './kernels.types.js';

export type * from './kernels.types.js';
export { ASYNC_THRESHOLD } from './kernels.types.js';

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Where the addon is looked for; GRADSERVE_ADDON overrides it (e.g. a build made with the portable gemm). */
export const ADDON_PATH = process.env.GRADSERVE_ADDON ?? join(packageRoot, 'build', 'Release', 'gradserve.node');

function loadAddon(): Kernels {
  if (!existsSync(ADDON_PATH)) {
    throw new Error(`gradserve native addon not found at ${ADDON_PATH}: run \`npm run build:native\` first`);
  }
  // Read by OpenBLAS when it loads with the addon, so it must be in the environment before the require.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
  const require = createRequire(import.meta.url);
  return require(ADDON_PATH) as Kernels;
}

export const kernels: Kernels = loadAddon();
