#!/usr/bin/env bash
# The sanitizer run (`npm run test:sanitize`, part of CI): builds the kernels, the addon and the native test binary a
# second time with AddressSanitizer + UndefinedBehaviorSanitizer (CMake option GRADSERVE_SANITIZE, its own build
# directory, build-asan), then
#   1. runs the native test binary (native/tests) with LeakSanitizer on: any ASan, UBSan or leak report fails it;
#   2. runs the kernel-level vitest suite (test/native) and the native program runner's tests
#      (test/engine/program.test.ts: binding/program.cc needs Node) against the instrumented addon. Node itself is not
#      instrumented, so the ASan runtime is preloaded (it must come first in the process) and leak checking is off:
#      Node keeps allocations alive at exit by design, which LeakSanitizer would report. A report aborts the test
#      worker, which fails the run.
# UBSan is built with -fno-sanitize-recover=all: the first report ends the process. Needs g++ (GCC's libasan and
# libubsan come with it); run after `npm ci`.
#   scripts/sanitize.sh             both steps
#   scripts/sanitize.sh --native    the native test binary only
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${GRADSERVE_SANITIZE_BUILD:-build-asan}

echo "sanitize: building $BUILD (ASan + UBSan)"
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
  npx cmake-js build --out "$BUILD" --CDGRADSERVE_SANITIZE=ON --log-level error

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "sanitize: native tests (ASan, UBSan, LeakSanitizer)"
ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
  "$BUILD/gradserve_native_tests"

[ "${1:-}" = "--native" ] && exit 0

LIBASAN=$(g++ -print-file-name=libasan.so)
ADDON=$PWD/$BUILD/Release/gradserve.node
export LD_PRELOAD=$LIBASAN ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 GRADSERVE_ADDON=$ADDON
# The instrumented addon must be the one loaded, with the runtime in the process.
node -e "require(process.env.GRADSERVE_ADDON);
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
  if (!maps.includes('libasan')) { console.error('sanitize: libasan is not loaded'); process.exit(1); }"
echo "sanitize: test/native and test/engine/program.test.ts against $ADDON"
npx vitest run test/native test/engine/program.test.ts
