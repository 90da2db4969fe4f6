"""gradserve: a client for the gradserve derivatives service.

    import numpy as np
    import gradserve

    gs = gradserve.Client("http://127.0.0.1:8080")
    r = gs.vjp(graph, {"x": x, "w": w}, cotangents={"y": dy}, wrt=["x", "w"])
    r["gradients"]["w"]                      # a numpy array

``gradserve.GraphBuilder(gs)`` writes graphs fluently with the server's op catalogue (``x.matmul(w).add(b).relu()``),
and ``gradserve.torch.remote(graph, gs)`` makes a graph a differentiable PyTorch function.
"""

from .client import BINARY_THRESHOLD_BYTES, Client, Result
from .errors import (BadRequestError, DeadlineExceededError, GradserveError, GraphError, InternalServerError,
                     InvalidResponseError, NotFoundError, OverloadedError, TimeoutError, TooLargeError,
                     TransportError, UnauthorizedError, UnavailableError)
from .builder import GraphBuilder, Value

__version__ = "0.1.0"

__all__ = [
    "Client", "Result", "GraphBuilder", "Value", "BINARY_THRESHOLD_BYTES", "GradserveError", "BadRequestError",
    "GraphError", "TooLargeError", "UnauthorizedError", "NotFoundError", "UnavailableError", "OverloadedError",
    "DeadlineExceededError", "InternalServerError", "TransportError", "TimeoutError", "InvalidResponseError",
]
