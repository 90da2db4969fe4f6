#!/bin/sh
# The linear layer y = x·w (N=1, D=2, M=3) through gradserve with nothing but curl.
#
#   sh examples/curl/seed.sh http://127.0.0.1:8080
#
# Prints each request's name on a "#" line, then the JSON answer on one line. The expected answers are written down
# in examples/curl/expected-output.txt (and explained in examples/curl/README.md).
set -eu
URL="${1:-http://127.0.0.1:8080}"

# The graph every request below sends: y = x·w, plus loss = sum(y) for /v1/grad.
GRAPH='{
  "inputs": {"x": {"shape": [null, 2], "datatype": "FP32"}, "w": {"shape": [2, 3], "datatype": "FP32"}},
  "nodes": [
    {"name": "y",    "op": "matmul", "inputs": ["x", "w"]},
    {"name": "loss", "op": "sum",    "inputs": ["y"]}
  ],
  "outputs": ["y"]
}'
# x = [[1, 2]], w = [[1, 2, 3], [4, 5, 6]] (bare nested arrays: the datatype comes from the graph, FP32)
INPUTS='{"x": [[1, 2]], "w": [[1, 2, 3], [4, 5, 6]]}'

post() {
  echo "# POST $1"
  curl -sS --fail-with-body -H 'Content-Type: application/json' --data-binary "$2" "$URL$1"
  echo
}

# Forward pass: y = x·w = [[9, 12, 15]].
post /v1/evaluate "{\"graph\": $GRAPH, \"inputs\": $INPUTS}"

# Backward pass for a given dL/dy = [[1, -1, 2]]:
#   dL/dx = dL/dy·wᵀ = [[5, 11]]      dL/dw = xᵀ·dL/dy = [[1, -1, 2], [2, -2, 4]]
post /v1/vjp "{\"graph\": $GRAPH, \"inputs\": $INPUTS,
  \"cotangents\": {\"y\": {\"shape\": [1, 3], \"datatype\": \"FP32\", \"data\": [1, -1, 2]}}, \"wrt\": [\"x\", \"w\"]}"

# The gradient of the scalar loss = sum(y): the same rule with dL/dy = [[1, 1, 1]]:
#   dL/dx = [[6, 15]]   dL/dw = [[1, 1, 1], [2, 2, 2]]
post /v1/grad "{\"graph\": $GRAPH, \"inputs\": $INPUTS, \"of\": \"loss\", \"wrt\": [\"x\", \"w\"]}"

# The full Jacobian dy/dx has shape y.shape ++ x.shape = [1, 3, 1, 2] and holds wᵀ: [1, 4, 2, 5, 3, 6].
post /v1/jacobian "{\"graph\": $GRAPH, \"inputs\": $INPUTS, \"of\": [\"y\"], \"wrt\": [\"x\"]}"

# Tensors may also travel as base64 of their little-endian bytes: "encoding": "b64" asks for that in the answer.
# AACAPwAAAEA= is the FP32 bytes of [1, 2]; decode the answer with: echo AAAQQQAAQEEAAHBB | base64 -d | od -An -f
post /v1/evaluate "{\"graph\": $GRAPH, \"encoding\": \"b64\",
  \"inputs\": {\"x\": {\"shape\": [1, 2], \"datatype\": \"FP32\", \"b64\": \"AACAPwAAAEA=\"}, \"w\": [[1, 2, 3], [4, 5, 6]]}}"

# Errors are application/problem+json with a stable code: y has 3 elements, so it has no gradient (NOT_SCALAR, 422).
echo "# POST /v1/grad (error)"
curl -sS -H 'Content-Type: application/json' -w '\nHTTP %{http_code}\n' \
  --data-binary "{\"graph\": $GRAPH, \"inputs\": $INPUTS, \"of\": \"y\", \"wrt\": [\"x\"]}" "$URL/v1/grad"
