"""Retries and connection handling against tiny local servers: 503 with Retry-After then 200, connection resets,
idle connections closed by the server, and a server that never answers. No gradserve server is needed."""

import email.utils
import json
import socket
import struct
import threading
import time
import unittest

import gradserve
from gradserve import errors as E

OK = {"outputs": {"y": {"shape": [2], "datatype": "FP64", "data": [1.5, "NaN"]}}}
GRAPH = {"inputs": {"x": {}}, "nodes": [{"name": "y", "op": "identity", "inputs": ["x"]}]}


def _read_request(conn):
    """Reads one HTTP request (headers and a Content-Length body) from a socket; returns its bytes or b""."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _answer(status, body, extra=b"", ctype=b"application/json", close=False):
    text = json.dumps(body).encode()
    reason = {200: b"OK", 503: b"Service Unavailable"}[status]
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n" %
            (status, reason, ctype, len(text), extra, b"Connection: close\r\n" if close else b"")) + text


class Scripted:
    """A socket server that plays a script: one action per request, in order. Actions: ("answer", bytes) writes the
    bytes and keeps the connection; ("close", bytes) writes them and closes; "reset" closes with a TCP RST right
    after reading the request; "hang" reads the request and never answers. Counts connections and requests."""

    def __init__(self, script):
        self.script = list(script)
        self.connections = 0
        self.requests = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.held = []

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        while True:
            req = _read_request(conn)
            if not req:
                conn.close()
                return
            self.requests.append(req)
            action = self.script.pop(0) if self.script else ("answer", _answer(200, OK))
            if action == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return
            if action == "hang":
                self.held.append(conn)
                return
            kind, data = action
            conn.sendall(data)
            if kind == "close":
                conn.close()
                return

    def close(self):
        self.stop.set()
        self.sock.close()
        for c in self.held:
            c.close()


def overloaded(retry_after):
    problem = {"type": "https://gradserve.dev/errors/OVERLOADED", "title": "Overloaded", "status": 503,
               "detail": "the server-wide memory budget stayed taken", "code": "OVERLOADED"}
    extra = b"" if retry_after is None else b"Retry-After: %s\r\n" % retry_after.encode()
    return ("answer", _answer(503, problem, extra, b"application/problem+json"))


class RetryTest(unittest.TestCase):
    def client(self, server, **kw):
        gs = gradserve.Client(server.url, **kw)
        gs.waits = []
        gs._t.sleep = gs.waits.append  # record the waits instead of sleeping
        self.addCleanup(server.close)
        self.addCleanup(gs.close)
        return gs

    def test_503_with_retry_after_then_200(self):
        s = Scripted([overloaded("2"), overloaded("1"), ("answer", _answer(200, OK))])
        gs = self.client(s, retries=2)
        y = gs.evaluate(GRAPH, {"x": [1.5, float("nan")]})["outputs"]["y"]
        self.assertEqual(y[0], 1.5)
        self.assertTrue(y[1] != y[1])
        self.assertEqual(gs.waits, [2.0, 1.0])  # the server's Retry-After, each time
        self.assertEqual(len(s.requests), 3)
        self.assertTrue(all(r == s.requests[0] for r in s.requests))  # the same request again

    def test_retry_after_as_an_http_date(self):
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        s = Scripted([overloaded(when), ("answer", _answer(200, OK))])
        gs = self.client(s, retries=1, max_retry_wait=60)
        gs.evaluate(GRAPH, {"x": [1, 2]})
        self.assertEqual(len(gs.waits), 1)
        self.assertTrue(25 < gs.waits[0] <= 31, gs.waits)

    def test_503_after_the_retries_raises_overloaded_with_retry_after(self):
        s = Scripted([overloaded("3"), overloaded("3")])
        gs = self.client(s, retries=1)
        with self.assertRaises(E.OverloadedError) as c:
            gs.evaluate(GRAPH, {"x": [1]})
        e = c.exception
        self.assertEqual((e.code, e.status, e.retry_after), ("OVERLOADED", 503, 3.0))
        self.assertIsInstance(e, E.UnavailableError)
        self.assertEqual(gs.waits, [3.0])
        self.assertEqual(len(s.requests), 2)

    def test_a_wait_longer_than_max_retry_wait_is_not_waited(self):
        s = Scripted([overloaded("120")])
        gs = self.client(s, retries=3, max_retry_wait=30)
        with self.assertRaises(E.OverloadedError):
            gs.evaluate(GRAPH, {"x": [1]})
        self.assertEqual(gs.waits, [])

    def test_503_without_retry_after_that_is_not_overload_is_not_retried(self):
        problem = {"status": 503, "code": "MODEL_UNAVAILABLE", "detail": "model \"m\" failed to load: bad weights"}
        s = Scripted([("answer", _answer(503, problem, ctype=b"application/problem+json"))])
        gs = self.client(s, retries=3)
        with self.assertRaises(E.UnavailableError) as c:
            gs.evaluate("m", {})
        self.assertEqual(c.exception.code, "MODEL_UNAVAILABLE")
        self.assertIn("bad weights", c.exception.detail)
        self.assertEqual(len(s.requests), 1)

    def test_connection_reset_is_retried_on_a_new_connection(self):
        s = Scripted(["reset", ("answer", _answer(200, OK))])
        gs = self.client(s, retries=2)
        self.assertEqual(gs.evaluate(GRAPH, {"x": [1, 2]})["outputs"]["y"][0], 1.5)
        self.assertEqual(len(s.requests), 2)
        self.assertEqual(s.connections, 2)
        self.assertEqual(len(gs.waits), 1)  # a short backoff

    def test_connection_reset_without_retries_raises(self):
        s = Scripted(["reset"])
        gs = self.client(s, retries=0)
        with self.assertRaises(E.TransportError) as c:
            gs.evaluate(GRAPH, {"x": [1]})
        self.assertEqual((c.exception.code, c.exception.status), ("NETWORK_ERROR", 0))

    def test_a_call_marked_not_idempotent_is_not_retried_after_a_reset(self):
        s = Scripted(["reset", ("answer", _answer(200, {"done": True}))])
        gs = self.client(s, retries=3)
        with self.assertRaises(E.TransportError):
            gs.request("POST", "/custom", {"a": 1}, idempotent=False)
        self.assertEqual(len(s.requests), 1)
        self.assertEqual(gs.request("POST", "/custom", {"a": 1}, idempotent=False), {"done": True})

    def test_an_idle_connection_closed_by_the_server_is_replaced(self):
        # The first answer keeps the connection alive, then the server drops it while it sits in the pool.
        s = Scripted([("answer", _answer(200, OK)), "reset", ("answer", _answer(200, OK))])
        gs = self.client(s, retries=0)  # even without retries: a stale pooled connection costs no retry
        gs.evaluate(GRAPH, {"x": [1]})
        self.assertEqual(gs.evaluate(GRAPH, {"x": [1]})["outputs"]["y"][0], 1.5)
        self.assertEqual(s.connections, 2)

    def test_connection_close_answers_are_not_reused(self):
        s = Scripted([("close", _answer(200, OK, close=True)), ("answer", _answer(200, OK))])
        gs = self.client(s)
        gs.evaluate(GRAPH, {"x": [1]})
        gs.evaluate(GRAPH, {"x": [1]})
        self.assertEqual(s.connections, 2)
        self.assertEqual(gs.waits, [])

    def test_timeout(self):
        s = Scripted(["hang"])
        gs = self.client(s, timeout=0.3, retries=2)
        with self.assertRaises(E.TimeoutError) as c:
            gs.evaluate(GRAPH, {"x": [1]})
        self.assertEqual(c.exception.code, "TIMEOUT")
        self.assertIsInstance(c.exception, E.TransportError)
        self.assertEqual(len(s.requests), 1)  # a timeout is not retried


if __name__ == "__main__":
    unittest.main()
