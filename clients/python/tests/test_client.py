"""Every endpoint against a live server, values checked against numpy."""

import os
import threading
import unittest

import numpy as np

import gradserve
from gradserve import errors as E

from . import support

LIN = {
    "inputs": {"x": {"shape": [None, 2], "datatype": "FP64"}, "w": {"shape": [2, 3], "datatype": "FP64"}},
    "constants": {"half": np.array(0.5)},
    "nodes": [{"name": "y", "op": "matmul", "inputs": ["x", "w"]}, {"name": "y2", "op": "square", "inputs": ["y"]},
              {"name": "s", "op": "sum", "inputs": ["y2"]}, {"name": "loss", "op": "mul", "inputs": ["s", "half"]}],
    "outputs": ["y", "loss"],
}
RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 2))
W = RNG.standard_normal((2, 3))


def mlp(n=64, d=32, h=16, c=5):
    """A tanh MLP with softmax cross entropy over INT32 labels, FP64, and its data."""
    g = {"inputs": {"x": {"shape": [None, d], "datatype": "FP64"}, "labels": {"shape": [None], "datatype": "INT32"},
                    "w1": {"shape": [d, h], "datatype": "FP64"}, "w2": {"shape": [h, c], "datatype": "FP64"}},
         "nodes": [{"name": "a", "op": "matmul", "inputs": ["x", "w1"]}, {"name": "h", "op": "tanh", "inputs": ["a"]},
                   {"name": "logits", "op": "matmul", "inputs": ["h", "w2"]},
                   {"name": "loss", "op": "softmax_cross_entropy", "inputs": ["logits", "labels"]}],
         "outputs": ["loss"]}
    r = np.random.default_rng(3)
    data = {"x": r.standard_normal((n, d)), "labels": r.integers(0, c, n).astype(np.int32),
            "w1": r.standard_normal((d, h)) / np.sqrt(d), "w2": r.standard_normal((h, c)) / np.sqrt(h)}
    return g, data


def mlp_numpy(data):
    """loss and its gradients w.r.t. w1, w2 by hand."""
    x, lab, w1, w2 = data["x"], data["labels"], data["w1"], data["w2"]
    h = np.tanh(x @ w1)
    z = h @ w2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n = len(x)
    loss = -np.log(p[np.arange(n), lab]).mean()
    dz = p.copy()
    dz[np.arange(n), lab] -= 1
    dz /= n
    dw2 = h.T @ dz
    dh = dz @ w2.T * (1 - h ** 2)
    return loss, x.T @ dh, dw2


class Spy:
    """Records the Content-Type and Accept of every request a client sends."""

    def __init__(self, client):
        self.seen = []
        real = client._t.request

        def request(method, path, headers, parts=None, idempotent=True):
            self.seen.append((path, headers.get("Content-Type"), headers.get("Accept", "").split(",")[0]))
            return real(method, path, headers, parts, idempotent)

        client._t.request = request


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = support.url()
        cls.gs = gradserve.Client(cls.url)

    # ------------------------------------------------------------ the derivative endpoints

    def test_evaluate(self):
        r = self.gs.evaluate(LIN, {"x": X, "w": W})
        np.testing.assert_allclose(r["outputs"]["y"], X @ W)
        np.testing.assert_allclose(r["outputs"]["loss"], 0.5 * ((X @ W) ** 2).sum())
        self.assertEqual(r["outputs"]["y"].dtype, np.float64)
        only = self.gs.evaluate(LIN, {"x": X, "w": W}, outputs=["s"])["outputs"]
        self.assertEqual(list(only), ["s"])

    def test_grad_vjp_match_numpy(self):
        y = X @ W
        g = self.gs.grad(LIN, {"x": X, "w": W}, of="loss", wrt=["x", "w"])["gradients"]
        np.testing.assert_allclose(g["x"], y @ W.T)
        np.testing.assert_allclose(g["w"], X.T @ y)
        dy = RNG.standard_normal(y.shape)
        v = self.gs.vjp(LIN, {"x": X, "w": W}, cotangents={"y": dy}, wrt=["x", "w"])
        np.testing.assert_allclose(v["gradients"]["x"], dy @ W.T)
        np.testing.assert_allclose(v["gradients"]["w"], X.T @ dy)
        np.testing.assert_allclose(v["outputs"]["y"], y)

    def test_mlp_grad_binary_matches_numpy_and_json(self):
        g, data = mlp()
        loss, dw1, dw2 = mlp_numpy(data)
        spy = Spy(self.gs)
        r = self.gs.grad(g, data, of="loss", wrt=["w1", "w2"])
        self.assertEqual(spy.seen[-1][1:], ("application/octet-stream", "application/octet-stream"))
        np.testing.assert_allclose(r["outputs"]["loss"], loss, rtol=1e-12)
        np.testing.assert_allclose(r["gradients"]["w1"], dw1, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(r["gradients"]["w2"], dw2, rtol=1e-10, atol=1e-14)
        # the same numbers whichever way the tensors travel
        for kw in ({"binary": "never"}, {"binary": "never", "b64_threshold": 10 ** 9, "response_encoding": "json"}):
            j = gradserve.Client(self.url, **kw).grad(g, data, of="loss", wrt=["w1", "w2"])
            np.testing.assert_array_equal(j["gradients"]["w1"], r["gradients"]["w1"])

    def test_jvp(self):
        t = RNG.standard_normal(X.shape)
        r = self.gs.jvp(LIN, {"x": X, "w": W}, tangents={"x": t}, of=["y"])
        np.testing.assert_allclose(r["tangents"]["y"], t @ W)
        self.assertEqual(list(r["tangents"]), ["y"])

    def test_jacobian(self):
        for mode in ("forward", "reverse", None):
            r = self.gs.jacobian(LIN, {"x": X[:1], "w": W}, of=["y"], wrt=["x"], mode=mode)
            j = r["jacobians"]["y"]["x"]
            self.assertEqual(j.shape, (1, 3, 1, 2))
            np.testing.assert_allclose(j[0, :, 0, :], W.T)
            self.assertIn(r["mode"], ("forward", "reverse"))
            if mode:
                self.assertEqual(r["mode"], mode)

    def test_hvp_and_hessian(self):
        v = RNG.standard_normal(X.shape)
        h = self.gs.hvp(LIN, {"x": X, "w": W}, of="loss", vectors={"x": v})
        # loss = ½|x·w|²: the Hessian w.r.t. x applies v ↦ v·w·wᵀ
        np.testing.assert_allclose(h["hvp"]["x"], v @ W @ W.T)
        np.testing.assert_allclose(h["gradients"]["x"], X @ W @ W.T)
        H = self.gs.hessian(LIN, {"x": X[:1], "w": W}, of="loss", wrt=["x", "w"])["hessians"]
        self.assertEqual(H["x"]["x"].shape, (1, 2, 1, 2))
        np.testing.assert_allclose(H["x"]["x"][0, :, 0, :], W @ W.T)
        self.assertEqual(H["x"]["w"].shape, (1, 2, 2, 3))
        self.assertEqual(H["w"]["w"].shape, (2, 3, 2, 3))

    def test_gradcheck(self):
        r = self.gs.gradcheck(LIN, {"x": X, "w": W}, of="loss", wrt=["x", "w"])
        self.assertTrue(r["ok"])
        self.assertLess(r["maxAbsError"], 1e-5)
        self.assertEqual(sorted(r["perInput"]), ["w", "x"])
        self.assertTrue(r["perInput"]["w"]["ok"])

    def test_transform_then_evaluate_and_transform_again(self):
        tg = self.gs.transform(LIN, "grad", wrt=["w"], of="loss")
        self.assertIn("grad:w", tg["outputs"])
        gw = self.gs.evaluate(tg, {"x": X, "w": W}, outputs=["grad:w"])["outputs"]["grad:w"]
        np.testing.assert_allclose(gw, X.T @ (X @ W))
        # a vjp graph takes cotangent:<output>; its second transform is a Hessian-vector product
        vg = self.gs.transform(LIN, "vjp", wrt=["x"], of=["y"])
        self.assertIn("cotangent:y", vg["inputs"])
        dy = RNG.standard_normal((4, 3))
        got = self.gs.evaluate(vg, {"x": X, "w": W, "cotangent:y": dy})["outputs"]["grad:x"]
        np.testing.assert_allclose(got, dy @ W.T)
        jg = self.gs.transform(LIN, "jvp", wrt=["x"], of=["y"])
        t = RNG.standard_normal(X.shape)
        np.testing.assert_allclose(self.gs.evaluate(jg, {"x": X, "w": W, "tangent:x": t})["outputs"]["tangent:y"], t @ W)

    def test_shapes_and_ops(self):
        sh = self.gs.shapes(LIN, {"x": {"shape": [5, 2], "datatype": "FP64"}, "w": W})
        self.assertEqual(sh["values"]["y"], {"shape": [5, 3], "datatype": "FP64"})
        self.assertEqual(sh["values"]["loss"]["shape"], [])
        self.assertGreater(sh["flops"], 0)
        self.assertGreater(sh["peakBytes"], 0)
        ops = {o["name"]: o for o in self.gs.ops()["ops"]}
        self.assertEqual(ops["matmul"]["inputs"], ["a", "b"])
        self.assertIn("axes", ops["sum"]["attrs"]["properties"])

    def test_batched_and_per_example(self):
        B = 5
        dys = RNG.standard_normal((B, 4, 3))
        r = self.gs.vjp(LIN, {"x": X, "w": W}, cotangents={"y": dys}, wrt=["x", "w"], batched=True)
        self.assertEqual(r["gradients"]["w"].shape, (B, 2, 3))
        for b in range(B):
            np.testing.assert_allclose(r["gradients"]["x"][b], dys[b] @ W.T)
            np.testing.assert_allclose(r["gradients"]["w"][b], X.T @ dys[b])
        self.assertTrue(r.headers["Gradserve-Batching"].startswith(("vectorized", "loop")))
        ts = RNG.standard_normal((B,) + X.shape)
        j = self.gs.jvp(LIN, {"x": X, "w": W}, tangents={"x": ts}, of=["y"], batched=True)["tangents"]["y"]
        np.testing.assert_allclose(j, ts @ W)
        h = self.gs.hvp(LIN, {"x": X, "w": W}, of="loss", vectors={"x": ts}, batched=True)["hvp"]["x"]
        np.testing.assert_allclose(h, ts @ W @ W.T)
        g, data = mlp(n=6)
        pe = self.gs.grad(g, data, of="loss", wrt=["w2", "x"], per_example={"axis": 0, "inputs": ["x", "labels"]})
        self.assertEqual(pe["gradients"]["w2"].shape, (6,) + data["w2"].shape)
        self.assertEqual(pe["gradients"]["x"].shape, data["x"].shape)
        for i in range(6):
            one = {**data, "x": data["x"][i:i + 1], "labels": data["labels"][i:i + 1]}
            _, _, dw2 = mlp_numpy(one)
            np.testing.assert_allclose(pe["gradients"]["w2"][i], dw2, rtol=1e-10, atol=1e-14)

    # ------------------------------------------------------------ encodings

    def test_every_datatype_bit_exact_every_way(self):
        names = "fdilbe"
        ident = {"inputs": {k: {"datatype": d} for k, d in zip(names, ("FP32", "FP64", "INT32", "INT64", "BOOL", "FP32"))},
                 "nodes": [{"name": "r_" + k, "op": "identity", "inputs": [k]} for k in names],
                 "outputs": ["r_" + k for k in names]}
        f = np.linspace(-1, 1, 2000, dtype=np.float32)
        f[3], f[4] = np.nan, -np.inf
        ins = {"f": f.reshape(40, 50), "d": np.array([np.pi, -0.0, np.inf, 1e-310]),
               "i": np.array([2 ** 31 - 1, -2 ** 31], dtype=np.int32), "l": np.array([2 ** 62 + 1, -2 ** 63], dtype=np.int64),
               "b": np.array([[True, False], [False, True]]), "e": np.zeros((0, 3), np.float32)}
        small = {k: v[:1] for k, v in ins.items()}
        for kw, data in (({}, ins), ({}, small), ({"binary": "always"}, small), ({"binary": "never"}, ins),
                         ({"binary": "never", "b64_threshold": 10 ** 9, "response_encoding": "json"}, small)):
            out = gradserve.Client(self.url, **kw).evaluate(ident, data)["outputs"]
            for k, v in data.items():
                got = out["r_" + k]
                self.assertEqual((got.dtype, got.shape), (v.dtype, v.shape), (kw, k))
                np.testing.assert_array_equal(got, v, err_msg=f"{kw} {k}")
                self.assertEqual(got.tobytes(), v.tobytes(), (kw, k))  # -0.0, NaN payloads: bit for bit

    def test_binary_by_default_above_4_kib_and_answers_are_views(self):
        g = {"inputs": {"a": {"datatype": "FP32"}}, "nodes": [{"name": "b", "op": "mul", "inputs": ["a", "a"]}]}
        spy = Spy(self.gs)
        at = np.ones(1024, np.float32)                 # exactly 4096 bytes: JSON
        above = np.ones(1025, np.float32)              # above: framed both ways
        self.gs.evaluate(g, {"a": at})
        r = self.gs.evaluate(g, {"a": above})
        self.assertEqual([s[1:] for s in spy.seen], [("application/json", "application/json"),
                                                     ("application/octet-stream", "application/octet-stream")])
        b = r["outputs"]["b"]
        self.assertIsNotNone(b.base)                   # a view of the buffer the answer was read into
        self.assertTrue(b.flags.writeable and b.flags.aligned and b.flags.c_contiguous)
        b[0] = 5                                       # usable like any array
        # graph constants count too, and travel as blobs
        gc = {"inputs": {"a": {"datatype": "FP64"}}, "constants": {"c": np.full(600, 2.0)},
              "nodes": [{"name": "s", "op": "sum", "inputs": ["c"]}, {"name": "y", "op": "mul", "inputs": ["a", "s"]}],
              "outputs": ["y"]}
        self.assertEqual(float(self.gs.evaluate(gc, {"a": np.array(0.5)})["outputs"]["y"]), 600.0)
        self.assertEqual(spy.seen[-1][1], "application/octet-stream")
        # non-contiguous and big-endian arrays go as their values
        m = np.arange(4096.0).reshape(64, 64)
        ident = {"inputs": {"a": {"datatype": "FP64"}}, "nodes": [{"name": "b", "op": "identity", "inputs": ["a"]}]}
        np.testing.assert_array_equal(self.gs.evaluate(ident, {"a": m.T})["outputs"]["b"], m.T)
        np.testing.assert_array_equal(self.gs.evaluate(ident, {"a": m.astype(">f8")})["outputs"]["b"], m)

    # ------------------------------------------------------------ errors

    def test_typed_errors_carry_the_problem(self):
        with self.assertRaises(E.GraphError) as c:
            self.gs.evaluate({"nodes": [{"name": "y", "op": "nosuchop", "inputs": []}], "outputs": ["y"]}, {})
        e = c.exception
        self.assertEqual((e.code, e.status), ("UNKNOWN_OP", 422))
        self.assertIn("nosuchop", e.detail)
        self.assertEqual(e.paths, ["graph.nodes[0].op"])
        self.assertIsInstance(e, gradserve.GradserveError)
        with self.assertRaises(E.GraphError) as c:
            self.gs.grad(LIN, {"x": X, "w": W}, of="y", wrt=["x"])
        self.assertEqual(c.exception.code, "NOT_SCALAR")
        with self.assertRaises(E.GraphError) as c:
            self.gs.vjp(LIN, {"x": X, "w": W}, cotangents={"y": np.ones((4, 2))}, wrt=["x"])
        self.assertEqual(c.exception.code, "SHAPE_MISMATCH")
        self.assertTrue(any(p.startswith("cotangents.y") for p in c.exception.paths), c.exception.paths)
        with self.assertRaises(E.GraphError) as c:
            self.gs.evaluate(LIN, {"x": X})
        self.assertEqual(c.exception.code, "MISSING_INPUT")
        with self.assertRaises(E.BadRequestError) as c:
            self.gs.evaluate(LIN, {"x": {"shape": [1, 2], "datatype": "FP64", "data": [1, 2, 3]}, "w": W})
        self.assertEqual((c.exception.code, c.exception.status), ("INVALID_TENSOR", 400))
        self.assertTrue(any(p.startswith("inputs.x") for p in c.exception.paths), c.exception.paths)
        with self.assertRaises(E.BadRequestError) as c:
            self.gs.request("POST", "/v1/evaluate", {"graph": support.LINEAR, "inputs": 5})
        self.assertEqual(c.exception.code, "INVALID_REQUEST")
        with self.assertRaises(E.NotFoundError) as c:
            self.gs.evaluate("no-such-model", {})
        self.assertEqual((c.exception.code, c.exception.status), ("NOT_FOUND", 404))
        with self.assertRaises(E.TransportError) as c:
            gradserve.Client("http://127.0.0.1:9", retries=0).ops()  # nothing listens on the discard port
        self.assertEqual(c.exception.code, "NETWORK_ERROR")

    def test_api_key_and_too_large(self):
        url = support.keyed_url()
        with self.assertRaises(E.UnauthorizedError) as c:
            gradserve.Client(url).ops()
        self.assertEqual((c.exception.code, c.exception.status), ("UNAUTHORIZED", 401))
        with self.assertRaises(E.UnauthorizedError):
            gradserve.Client(url, api_key="wrong").ops()
        gs = gradserve.Client(url, api_key=support.API_KEY)
        self.assertIn("matmul", {o["name"] for o in gs.ops()["ops"]})
        self.assertTrue(gradserve.Client(url).live())  # health needs no key
        lin = {"inputs": {"x": {"shape": [1, 2], "datatype": "FP32"}, "w": {"shape": [2, 3], "datatype": "FP32"}},
               "nodes": [{"name": "y", "op": "matmul", "inputs": ["x", "w"]}], "outputs": ["y"]}
        x, w = np.ones((1, 2), np.float32), np.ones((2, 3), np.float32)
        with self.assertRaises(E.TooLargeError) as c:  # 4 KiB per request: 1000 cotangents do not fit
            gs.vjp(lin, {"x": x, "w": w}, cotangents={"y": np.ones((1000, 1, 3), np.float32)}, wrt=["x", "w"], batched=True)
        self.assertEqual((c.exception.code, c.exception.status), ("TOO_LARGE", 413))
        self.assertIn("largest batch that fits", c.exception.detail)

    # ------------------------------------------------------------ models, ONNX, OIP

    def test_models_by_reference(self):
        support.repository()
        x = np.array([[1.0, 2.0]])
        r = self.gs.vjp("linear", {"x": x}, cotangents={"y": np.array([[1.0, -1.0, 2.0]])}, wrt=["x", "w"])
        np.testing.assert_allclose(r["outputs"]["y"], x @ support.LINEAR_W)
        np.testing.assert_allclose(r["gradients"]["x"], np.array([[1.0, -1.0, 2.0]]) @ support.LINEAR_W.T)
        np.testing.assert_allclose(r["gradients"]["w"], x.T @ np.array([[1.0, -1.0, 2.0]]))
        # a stored weight may be overridden for one request
        w2 = np.ones((2, 3))
        np.testing.assert_allclose(self.gs.evaluate("linear", {"x": x, "w": w2})["outputs"]["y"], x @ w2)
        meta = self.gs.model_metadata("linear")
        self.assertEqual([i["name"] for i in meta["inputs"]], ["x"])
        self.assertEqual([p["name"] for p in meta["parameters"]], ["w"])
        self.assertTrue(self.gs.model_ready("linear"))
        self.assertEqual(self.gs.model_metadata("linear", version=1)["name"], "linear")
        with self.assertRaises(E.NotFoundError):
            self.gs.model_metadata("nope")
        self.assertEqual(self.gs.shapes("linear", {"x": {"shape": [7, 2], "datatype": "FP64"}})["values"]["y"]["shape"], [7, 3])

    def test_infer_with_gradients_json_and_binary(self):
        support.repository()
        for n in (1, 300):  # 1 row: JSON; 300 rows (600 elements): the binary tensor data extension
            x = np.linspace(-1, 1, 2 * n).reshape(n, 2)
            spy = Spy(self.gs)
            r = self.gs.infer_response("linear", {"x": x}, outputs=["y", {"name": "grad:w", "parameters": {"of": "loss"}},
                                                                     {"name": "grad:x", "parameters": {"of": "loss"}}])
            self.assertEqual(spy.seen[-1][1], "application/octet-stream" if n > 1 else "application/json")
            self.assertEqual(r["model_name"], "linear")
            out = r["outputs"]
            np.testing.assert_allclose(out["y"], x @ support.LINEAR_W)
            # loss = sum(x·w): d/dw = xᵀ·1, d/dx = 1·wᵀ
            np.testing.assert_allclose(out["grad:w"], x.T @ np.ones((n, 3)))
            np.testing.assert_allclose(out["grad:x"], np.ones((n, 3)) @ support.LINEAR_W.T)
            self.assertEqual(out["y"].dtype, np.float64)
        with self.assertRaises(E.GradserveError) as c:
            self.gs.infer("linear", {"x": np.ones((1, 5))})
        self.assertEqual(c.exception.status, 400)
        self.assertEqual(c.exception.code, "HTTP_ERROR")  # /v2 errors are {"error": ...}

    def test_import_onnx(self):
        path = os.path.join(support.ROOT, "test", "fixtures", "onnx", "mlp_layernorm.onnx")
        with open(path, "rb") as f:
            data = f.read()
        a = self.gs.import_onnx(data)
        b = self.gs.import_onnx(data, weights="binary")
        self.assertIn("nodes", a["graph"])
        self.assertEqual(sorted(a["parameters"]), sorted(b["parameters"]))
        for k, v in a["parameters"].items():
            self.assertIsInstance(v, np.ndarray)
            np.testing.assert_array_equal(v, b["parameters"][k])
        with self.assertRaises(E.BadRequestError) as c:
            self.gs.import_onnx(b"not a model")
        self.assertEqual(c.exception.code, "INVALID_MODEL")

    def test_health_metadata_operations(self):
        self.assertTrue(self.gs.live())
        self.assertTrue(self.gs.ready())
        self.assertIn("binary_tensor_data", self.gs.server_metadata()["extensions"])
        self.assertIn("gradserve_", self.gs.metrics())
        self.assertIn("/v1/vjp", self.gs.openapi()["paths"])

    # ------------------------------------------------------------ connections

    def test_keep_alive_one_connection_for_sequential_calls(self):
        gs = gradserve.Client(self.url)
        made = []
        new = gs._t._new
        gs._t._new = lambda: made.append(1) or new()
        g, data = mlp()
        for _ in range(10):
            gs.grad(g, data, of="loss", wrt=["w1"])
            gs.evaluate(LIN, {"x": X, "w": W})
        self.assertEqual(len(made), 1)

    def test_threads_share_one_client(self):
        gs = gradserve.Client(self.url, pool_size=4)
        g, data = mlp()
        _, want, _ = mlp_numpy(data)
        errors = []

        def work(k):
            try:
                for i in range(6):
                    s = float(k + i)
                    d = {**data, "w1": data["w1"] * (1 + s / 100)}
                    got = gs.grad(g, d, of="loss", wrt=["w1"])["gradients"]["w1"]
                    np.testing.assert_allclose(got, mlp_numpy(d)[1], rtol=1e-9, atol=1e-13)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertLessEqual(len(gs._t._idle), 4)
        self.assertIsNotNone(want)


if __name__ == "__main__":
    unittest.main()
