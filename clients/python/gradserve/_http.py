"""HTTP for the client: a pool of keep-alive ``http.client`` connections (thread-safe), requests sent as a list of
parts (the JSON header, then views of the tensors' bytes), answers read once into one buffer, and retries: 503 with
``Retry-After`` (or OVERLOADED) for every call, connection resets for idempotent calls."""

import email.utils
import http.client
import json
import socket
import threading
import time
import urllib.parse
import weakref

import numpy as np

from . import errors as E
from ._wire import HEADER_LENGTH

try:
    import ssl
    _SSL_SOCKETS = (ssl.SSLSocket,)  # no sendmsg on TLS sockets
except ImportError:  # pragma: no cover (Python built without ssl)
    _SSL_SOCKETS = ()

# A reset of a connection, or one the server had closed while it sat in the pool.
RESETS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.RemoteDisconnected,
          http.client.BadStatusLine, http.client.IncompleteRead)


class _Capturing:
    """http.client connections whose request head can be captured instead of sent, so that the head, the JSON and
    the tensors' bytes leave in one gathered write (sendmsg) rather than one write each."""

    _gs_capture = None
    _gs_used = False

    def send(self, data):
        if self._gs_capture is not None:
            self._gs_capture.append(data)
            return
        super().send(data)


class _HTTP(_Capturing, http.client.HTTPConnection):
    pass


class _HTTPS(_Capturing, http.client.HTTPSConnection):
    pass


def _sendv(sock, parts):
    """Writes every part, in order, with as few system calls as the kernel allows (scatter/gather)."""
    bufs = [memoryview(p).cast("B") for p in parts if len(p)]
    if not hasattr(sock, "sendmsg") or isinstance(sock, _SSL_SOCKETS):
        for b in bufs:
            sock.sendall(b)
        return
    i = 0
    while i < len(bufs):
        n = sock.sendmsg(bufs[i:i + 512])
        while n:
            b = bufs[i]
            if n >= b.nbytes:
                n -= b.nbytes
                i += 1
            else:
                bufs[i] = b[n:]
                n = 0


class Answer:
    """One HTTP answer: ``status``, ``headers`` (an ``http.client.HTTPMessage``) and the body: ``json`` (parsed), and
    for a framed answer ``section``, a memoryview of its binary section inside the one buffer it was read into."""

    __slots__ = ("status", "headers", "json", "section", "raw")

    def __init__(self, status, headers, json_, section=None, raw=None):
        self.status, self.headers, self.json, self.section, self.raw = status, headers, json_, section, raw


def parse_retry_after(value):
    """Seconds from a Retry-After header (a number of seconds or an HTTP date), or None."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    def __init__(self, url, timeout=60.0, retries=2, pool_size=8, max_retry_wait=30.0, backoff=0.1):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.pool_size = pool_size
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.sleep = time.sleep  # replaceable (tests record the waits instead of sleeping)
        self._idle = []
        self._lock = threading.Lock()
        # idle connections close when the client goes away
        weakref.finalize(self, _close_all, self._idle)

    # ---------------------------------------------------------------- pool

    def _new(self):
        cls = _HTTPS if self.scheme == "https" else _HTTP
        return cls(self.host, self.port, timeout=self.timeout)

    def _get(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new()

    def _put(self, conn):
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self):
        with self._lock:
            idle = self._idle[:]
            del self._idle[:]
        _close_all(idle)

    # ---------------------------------------------------------------- one exchange

    def _once(self, conn, method, path, headers, parts, length):
        conn.putrequest(method, self.prefix + path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if parts is not None:
            conn.putheader("Content-Length", str(length))
        if conn.sock is None:
            conn.connect()
        # the request head, the JSON and the tensors' own bytes (views, not copies) in one gathered write
        conn._gs_capture = head_parts = []
        try:
            conn.endheaders()
        finally:
            conn._gs_capture = None
        _sendv(conn.sock, head_parts + (parts or []))
        res = conn.getresponse()
        head = res.getheader(HEADER_LENGTH)
        n = res.getheader("Content-Length")
        if head is not None and 200 <= res.status < 300:
            if n is not None:
                # one buffer for the whole answer, not zero-filled first; the arrays returned are views of it
                buf = np.empty(int(n), np.uint8)
                mv = memoryview(buf)
                got = 0
                while got < len(buf):
                    k = res.readinto(mv[got:])
                    if not k:
                        raise http.client.IncompleteRead(bytes(mv[:0]), len(buf) - got)
                    got += k
            else:
                buf = np.frombuffer(bytearray(res.read()), np.uint8)
            raw = buf
        else:
            raw = res.read()
        if res.will_close:
            conn.close()
        else:
            conn._gs_used = True
            self._put(conn)
        return res, head, raw

    def request(self, method, path, headers, parts=None, idempotent=True):
        """Sends ``parts`` (a list of bytes-like, or None for no body) and returns an :class:`Answer`; non-2xx answers
        raise the matching :class:`GradserveError`."""
        length = sum(memoryview(p).nbytes for p in parts) if parts is not None else 0
        attempt = 0
        while True:
            conn = self._get()
            reused = conn._gs_used
            try:
                res, head, raw = self._once(conn, method, path, headers, parts, length)
            except socket.timeout:
                conn.close()
                raise E.TimeoutError("TIMEOUT", 0, f"{method} {path}: no answer within {self.timeout} s") from None
            except RES_ERRORS as e:
                conn.close()
                # A connection from the pool may have been closed by the server while idle: that one try is free.
                if idempotent and reused:
                    continue
                if idempotent and attempt < self.retries:
                    self.sleep(self.backoff * 2 ** attempt)
                    attempt += 1
                    continue
                raise E.TransportError("NETWORK_ERROR", 0, f"{method} {self._where(path)}: {type(e).__name__}: {e}") from None
            except OSError as e:
                conn.close()
                raise E.TransportError("NETWORK_ERROR", 0, f"{method} {self._where(path)}: {e}") from None
            if 200 <= res.status < 300:
                return self._answer(res, head, raw, method, path)
            err = error_from(res, raw)
            if res.status == 503 and attempt < self.retries and (err.retry_after is not None or err.code == "OVERLOADED"):
                wait = err.retry_after if err.retry_after is not None else self.backoff * 2 ** attempt
                if wait <= self.max_retry_wait:
                    self.sleep(wait)
                    attempt += 1
                    continue
            raise err

    def _where(self, path):
        return f"{self.scheme}://{self.host}{'' if self.port is None else f':{self.port}'}{self.prefix}{path}"

    @staticmethod
    def _answer(res, head, raw, method, path):
        try:
            if head is not None:
                n = int(head)
                if n < 0 or n > len(raw):
                    raise ValueError(f"{HEADER_LENGTH} {head} does not fit a body of {len(raw)} bytes")
                mv = memoryview(raw)
                return Answer(res.status, res.headers, json.loads(mv[:n].tobytes()), mv[n:], raw)
            ctype = (res.getheader("Content-Type") or "").split(";")[0].strip()
            if ctype.endswith("json"):
                return Answer(res.status, res.headers, json.loads(raw) if raw else None, None, raw)
            return Answer(res.status, res.headers, None, None, raw)
        except ValueError as e:
            raise E.InvalidResponseError("INVALID_RESPONSE", res.status, f"{method} {path}: {e}") from None


RES_ERRORS = RESETS


def _close_all(conns):
    for c in list(conns):
        c.close()


def error_from(res, raw):
    """The typed error for a non-2xx answer, from whichever error body the route uses."""
    retry = parse_retry_after(res.getheader("Retry-After"))
    rid = res.getheader("X-Request-Id")
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else raw
    status = res.status
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        code = body["code"]
        return E.error_class(code, status)(
            code, body.get("status", status), body.get("detail", body.get("title", "")), title=body.get("title"),
            errors=body.get("errors"), retry_after=retry, body=body, type=body.get("type"), request_id=rid)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return E.error_class(None, status)("HTTP_ERROR", status, body["error"], retry_after=retry, body=body, request_id=rid)
    detail = (str(body)[:500] if body else "") or f"HTTP {status} {res.reason}"
    return E.error_class(None, status)("HTTP_ERROR", status, detail, retry_after=retry, body=body, request_id=rid)
