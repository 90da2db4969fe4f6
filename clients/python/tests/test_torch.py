"""gradserve.torch: a remote graph as a torch.autograd.Function; gradcheck and gradgradcheck in float64."""

import unittest

import numpy as np

import gradserve

from . import support

try:
    import torch
    from gradserve.torch import remote
    HAVE_TORCH = True
    WHY = ""
except ImportError as e:  # only where torch cannot be imported at all
    HAVE_TORCH = False
    WHY = f"torch cannot be imported here ({e}); install python3-torch (Debian) or torch to run the bridge's tests"


@unittest.skipUnless(HAVE_TORCH, WHY)
class TorchBridgeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gs = gradserve.Client(support.url())
        b = cls.gs.builder()
        x = b.input("x", [None, 3], "FP64")
        w = b.input("w", [3, 2], "FP64")
        h = x.matmul(w).tanh().as_("h")
        s = (h * h).sum(1).sigmoid().as_("s")
        cls.graph = b.output(h, s).build()

    def data(self, requires_grad=True):
        g = torch.Generator().manual_seed(5)
        x = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=requires_grad)
        w = torch.randn(3, 2, dtype=torch.float64, generator=g, requires_grad=requires_grad)
        return x, w

    @staticmethod
    def local(x, w):
        h = torch.tanh(x @ w)
        return h, torch.sigmoid((h * h).sum(1))

    def test_forward_and_backward_match_torch(self):
        f = remote(self.graph, self.gs)
        x, w = self.data()
        h, s = f(x, w)
        hl, sl = self.local(x, w)
        torch.testing.assert_close(h, hl)
        torch.testing.assert_close(s, sl)
        self.assertTrue(h.requires_grad)
        (h.sum() + 3 * s.sum()).backward()
        gx, gw = x.grad.clone(), w.grad.clone()
        x.grad = w.grad = None
        (hl.sum() + 3 * sl.sum()).backward()
        torch.testing.assert_close(gx, x.grad)
        torch.testing.assert_close(gw, w.grad)

    def test_gradcheck_and_gradgradcheck(self):
        f = remote(self.graph, self.gs)
        x, w = self.data()
        self.assertTrue(torch.autograd.gradcheck(f, (x, w)))
        self.assertTrue(torch.autograd.gradgradcheck(f, (x, w)))

    def test_double_backward_matches_torch_hessian_vector_product(self):
        f = remote(self.graph, self.gs, outputs=["s"])
        x, w = self.data()
        v = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
        (g,) = torch.autograd.grad(f(x, w).sum(), w, create_graph=True)
        (hv,) = torch.autograd.grad((g * v).sum(), w)
        (gl,) = torch.autograd.grad(self.local(x, w)[1].sum(), w, create_graph=True)
        (hvl,) = torch.autograd.grad((gl * v).sum(), w)
        torch.testing.assert_close(g, gl)
        torch.testing.assert_close(hv, hvl)
        # third order works the same way (the derivative graph transformed again)
        def third(fn):
            (g,) = torch.autograd.grad(fn(x, w).sum(), w, create_graph=True)
            (hv,) = torch.autograd.grad((g * v).sum(), w, create_graph=True)
            return torch.autograd.grad((hv ** 2).sum(), x)[0]

        g3, g3l = third(f), third(lambda x, w: self.local(x, w)[1])
        torch.testing.assert_close(g3, g3l)

    def test_integer_inputs_and_keyword_inputs(self):
        b = self.gs.builder()
        logits = b.input("logits", [None, 4], "FP64")
        labels = b.input("labels", [None], "INT32")
        loss = logits.softmax_cross_entropy(labels).as_("loss")
        f = remote(b.output(loss).build(), self.gs)
        z = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
        lab = torch.tensor([0, 3, 1, 1, 2], dtype=torch.int32)
        out = f(labels=lab, logits=z)
        torch.testing.assert_close(out, torch.nn.functional.cross_entropy(z, lab.long()))
        self.assertTrue(torch.autograd.gradcheck(lambda z: f(z, lab), (z,)))
        self.assertTrue(torch.autograd.gradgradcheck(lambda z: f(z, lab), (z,)))

    def test_integer_outputs_are_not_differentiable(self):
        b = self.gs.builder()
        x = b.input("x", [None, 3], "FP64")
        f = remote(b.output(x.exp().as_("e"), x.argmax(1).as_("i")).build(), self.gs)
        x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
        e, i = f(x)
        self.assertFalse(i.requires_grad)
        self.assertEqual(i.dtype, torch.int64)
        torch.testing.assert_close(i, x.argmax(1))
        e.sum().backward()
        torch.testing.assert_close(x.grad, x.detach().exp())

    def test_inside_a_module_training_reduces_the_loss(self):
        f = remote(self.graph, self.gs, outputs=["s"])
        x, _ = self.data(requires_grad=False)
        w = torch.nn.Parameter(torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
        opt = torch.optim.SGD([w], lr=0.5)
        target = torch.full((4,), 0.9, dtype=torch.float64)
        losses = []
        for _ in range(20):
            opt.zero_grad()
            loss = ((f(x, w) - target) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.assertLess(losses[-1], 0.5 * losses[0])

    def test_a_repository_model_by_name(self):
        support.repository()
        f = remote("linear", self.gs)
        self.assertEqual(f.inputs, ["x"])
        x = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64, requires_grad=True)
        W = torch.from_numpy(support.LINEAR_W)
        y = f(x)
        torch.testing.assert_close(y, x.detach() @ W)
        self.assertTrue(torch.autograd.gradcheck(f, (x,)))
        # a stored weight given as a keyword is an ordinary input, differentiable too
        w = W.clone().requires_grad_()
        (f(x, w=w) ** 2).sum().backward()
        torch.testing.assert_close(w.grad, 2 * x.detach().T @ (x.detach() @ W))
        with self.assertRaisesRegex(RuntimeError, "weights"):
            (g,) = torch.autograd.grad((f(x) ** 2).sum(), x, create_graph=True)
            g.sum().backward()


if __name__ == "__main__":
    unittest.main()
