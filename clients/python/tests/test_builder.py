"""GraphBuilder: its ops are the server's catalogue (GET /v1/ops), and the graphs it writes compute what numpy does."""

import json
import unittest

import numpy as np

import gradserve
from gradserve.builder import Op

from . import support


class BuilderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gs = gradserve.Client(support.url())
        cls.catalogue = cls.gs.ops()["ops"]

    def test_the_methods_are_the_catalogue(self):
        b = gradserve.GraphBuilder(self.catalogue)
        public = {o["name"] for o in self.catalogue if not o["internal"]}
        self.assertEqual(set(b.ops), public)
        x = b.input("x")
        self.assertTrue(public <= set(dir(x)))
        for name in public:  # every op is reachable from a value and from the builder, documented as the server does
            self.assertEqual(getattr(x, name).__doc__, b.ops[name].doc)
            self.assertTrue(callable(getattr(b, name)))
        with self.assertRaises(AttributeError):
            x.nosuchop()
        internal = gradserve.GraphBuilder(self.catalogue, internal=True)
        self.assertEqual(set(internal.ops), {o["name"] for o in self.catalogue})

    def test_every_op_of_one_or_two_float_inputs_builds_a_node_the_server_accepts(self):
        # All ops whose inputs are one or two FP64 tensors and whose attributes are optional: the builder's node is
        # checked by the server's own shape inference.
        b = gradserve.GraphBuilder(self.catalogue)
        x, y = b.input("x", [4, 4], "FP64"), b.input("y", [4, 4], "FP64")
        skip = {"where"}  # BOOL condition
        names = []
        for op in b.ops.values():
            if op.variadic or op.required_attrs or op.name in skip or len(op.required) not in (1, 2):
                continue
            if op.name in ("logical_and", "logical_or", "logical_xor", "logical_not", "softmax_cross_entropy",
                           "gather", "one_hot", "take_along_axis", "scatter_add", "conv", "conv_transpose",
                           "max_pool", "avg_pool", "batch_norm", "group_norm", "cast"):
                continue  # integer / bool inputs, or layouts of their own
            v = getattr(x, op.name)(*([y] if len(op.required) == 2 else []))
            names.append((op.name, v.name))
        self.assertGreater(len(names), 60)
        g = b.output(*[b._nodes[-1]["name"]]).build()
        sh = self.gs.shapes(g, {"x": {"shape": [4, 4], "datatype": "FP64"}, "y": {"shape": [4, 4], "datatype": "FP64"}})
        for op, node in names:
            self.assertIn(node, sh["values"], op)

    def test_mlp_matches_numpy(self):
        b = self.gs.builder()
        x = b.input("x", [None, 3], "FP64")
        w = b.input("w", [3, 4], "FP64")
        bias = b.input("b", [4], "FP64")
        h = x.matmul(w).add(bias).relu().as_("h")
        loss = (h * h).mean().as_("loss")
        g = b.output(h, loss).build()
        self.assertEqual([n["op"] for n in g["nodes"]], ["matmul", "add", "relu", "mul", "mean"])
        r = np.random.default_rng(1)
        X, Wm, B = r.standard_normal((5, 3)), r.standard_normal((3, 4)), r.standard_normal(4)
        out = self.gs.grad(g, {"x": X, "w": Wm, "b": B}, of="loss", wrt=["w", "b"])
        H = np.maximum(X @ Wm + B, 0)
        np.testing.assert_allclose(out["outputs"]["h"], H)
        np.testing.assert_allclose(out["outputs"]["loss"], (H * H).mean())
        dH = 2 * H / H.size
        np.testing.assert_allclose(out["gradients"]["w"], X.T @ dH)
        np.testing.assert_allclose(out["gradients"]["b"], dH.sum(0))

    def test_operators_constants_attrs_and_optional_inputs(self):
        b = self.gs.builder()
        x = b.input("x", [2, 3], "FP64")
        s = b.input("s", [3], "FP64")
        # numbers become constants of the operand's datatype; reflected operators keep the order
        e1 = (2 - x * 3 + 1 / (x ** 2 + 1)).as_("e1")
        e2 = x.sum(1).as_("e2")                       # a positional attribute: axes
        e3 = x.softmax(axis=0).as_("e3")
        e4 = x.layer_norm(scale=s, epsilon=1e-3).as_("e4")
        e5 = b.concat([x, -x], axis=0).as_("e5")
        e6 = b.einsum("ij,j->i", x, s).as_("e6")
        e7 = x.clip(-0.5, 0.5).as_("e7")
        e8 = (x @ b.constant(np.eye(3))).as_("e8")
        g = b.output(e1, e2, e3, e4, e5, e6, e7, e8).build()
        self.assertEqual(g["constants"]["const" + g["nodes"][0]["inputs"][1][len("const"):]].dtype, np.float64)
        json.dumps(b.to_json())  # a plain-JSON form too
        X = np.array([[0.3, -1.2, 2.0], [1.0, 0.1, -0.7]])
        S = np.array([1.5, -2.0, 0.5])
        o = self.gs.evaluate(g, {"x": X, "s": S})["outputs"]
        np.testing.assert_allclose(o["e1"], 2 - X * 3 + 1 / (X ** 2 + 1))
        np.testing.assert_allclose(o["e2"], X.sum(1))
        ex = np.exp(X - X.max(0))
        np.testing.assert_allclose(o["e3"], ex / ex.sum(0))
        mu, var = X.mean(-1, keepdims=True), X.var(-1, keepdims=True)
        np.testing.assert_allclose(o["e4"], (X - mu) / np.sqrt(var + 1e-3) * S, rtol=1e-12)
        np.testing.assert_allclose(o["e5"], np.concatenate([X, -X]))
        np.testing.assert_allclose(o["e6"], X @ S)
        np.testing.assert_allclose(o["e7"], np.clip(X, -0.5, 0.5))
        np.testing.assert_allclose(o["e8"], X)

    def test_mistakes_fail_at_build_time(self):
        b = self.gs.builder()
        x = b.input("x", [2], "FP32")
        with self.assertRaisesRegex(TypeError, "no attribute 'axis'.*axes"):
            x.sum(axis=0)
        with self.assertRaisesRegex(TypeError, "too many arguments"):
            x.relu(1)
        with self.assertRaisesRegex(TypeError, "missing input"):
            b.matmul(x)
        with self.assertRaisesRegex(TypeError, "left off from the end"):
            x.layer_norm(bias=x)
        with self.assertRaisesRegex(TypeError, "missing attribute"):
            x.reshape()
        with self.assertRaisesRegex(ValueError, "already used"):
            b.input("x")
        with self.assertRaisesRegex(ValueError, "only nodes"):
            x.as_("y")
        self.assertEqual(x.exp().dtype, "FP32")
        # numbers meet where's branches in their datatype, not the BOOL condition's
        d = b.input("d", [2], "FP64")
        self.assertEqual(b.where(d.greater(0), d, 0).dtype, "FP64")
        self.assertEqual(b.build()["constants"][b._nodes[-1]["inputs"][2]].dtype, np.float64)
        # the TypeScript spellings
        self.assertEqual(x.logSoftmax().name.split("_")[:2], ["log", "softmax"])
        self.assertEqual(b._nodes[-1]["op"], "log_softmax")
        self.assertEqual(x.greater(0).dtype, "BOOL")
        self.assertEqual(x.argmax().dtype, "INT64")

    def test_op_signatures_follow_the_catalogue(self):
        ops = {o["name"]: Op(o) for o in self.catalogue}
        self.assertEqual(ops["conv"].required, ["x", "w"])
        self.assertEqual(ops["conv"].optional, ["b"])
        self.assertEqual(ops["concat"].variadic, "xs")
        self.assertEqual(ops["sum"].attrs[:2], ["axes", "keepdims"])


if __name__ == "__main__":
    unittest.main()
