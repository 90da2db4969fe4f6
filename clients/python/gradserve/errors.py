"""Errors a call can raise.

Every error is a :class:`GradserveError` carrying the service's problem+json fields: ``code`` (the stable catalogue
code to branch on, e.g. ``SHAPE_MISMATCH``), ``status``, ``detail``, ``title``, ``errors`` (``[{"path", "message"}]``,
paths into the request such as ``graph.nodes[2].inputs[1]``) and ``retry_after`` (seconds, on 503). The subclasses
group the codes so that a caller can catch a family at once; failures without a problem+json body get client-side
codes: ``HTTP_ERROR`` (another error body, e.g. the Open Inference Protocol's ``{"error": ...}``), ``NETWORK_ERROR``
(connection refused or reset), ``TIMEOUT`` and ``INVALID_RESPONSE`` (a 2xx answer that is not what the contract says).
"""

__all__ = [
    "GradserveError", "BadRequestError", "GraphError", "TooLargeError", "UnauthorizedError", "NotFoundError",
    "UnavailableError", "OverloadedError", "DeadlineExceededError", "InternalServerError", "TransportError",
    "TimeoutError", "InvalidResponseError", "error_class",
]


class GradserveError(Exception):
    """A failed call. ``code`` is the service's catalogue code, or a client-side one (see the module)."""

    def __init__(self, code, status, detail, title=None, errors=None, retry_after=None, body=None, type=None,
                 request_id=None):
        super().__init__(f"{code} ({status}): {detail}")
        self.code = code
        self.status = status
        self.detail = detail
        self.title = title
        self.type = type
        self.errors = list(errors or [])
        self.retry_after = retry_after
        self.body = body
        self.request_id = request_id

    @property
    def paths(self):
        """The request paths of ``errors``, e.g. ``["graph.nodes[0].op"]``."""
        return [e.get("path") for e in self.errors if isinstance(e, dict)]


class BadRequestError(GradserveError):
    """400: INVALID_JSON, INVALID_REQUEST, INVALID_TENSOR, INVALID_MODEL."""


class GraphError(GradserveError):
    """422: the request is well formed but the graph cannot run as asked (UNKNOWN_OP, SHAPE_MISMATCH, NOT_SCALAR,
    NOT_DIFFERENTIABLE, MISSING_INPUT, ...)."""


class TooLargeError(GradserveError):
    """413 TOO_LARGE: a size or memory limit; ``detail`` says which and by how much."""


class UnauthorizedError(GradserveError):
    """401 UNAUTHORIZED: no API key, or a wrong one."""


class NotFoundError(GradserveError):
    """404 NOT_FOUND: no such route, model or model version."""


class UnavailableError(GradserveError):
    """503: the service cannot serve this now (MODEL_UNAVAILABLE, or a 503 without a code)."""


class OverloadedError(UnavailableError):
    """503 OVERLOADED: the server-wide memory budget stayed taken; ``retry_after`` says when to try again. The client
    retries these by itself (``retries``) before raising."""


class DeadlineExceededError(GradserveError):
    """504 DEADLINE_EXCEEDED: the request ran past the server's time limit and was cancelled."""


class InternalServerError(GradserveError):
    """500 INTERNAL: a bug in the service (logged there with the request id)."""


class TransportError(GradserveError):
    """NETWORK_ERROR: the connection could not be made, or was reset (after the retries allowed)."""


class TimeoutError(TransportError):  # noqa: A001 (a gradserve error, also a TransportError)
    """TIMEOUT: no answer within the client's ``timeout``."""


class InvalidResponseError(GradserveError):
    """INVALID_RESPONSE: a 2xx answer that is not what the contract promises."""


_BY_CODE = {
    "OVERLOADED": OverloadedError, "MODEL_UNAVAILABLE": UnavailableError, "TOO_LARGE": TooLargeError,
    "UNAUTHORIZED": UnauthorizedError, "NOT_FOUND": NotFoundError, "DEADLINE_EXCEEDED": DeadlineExceededError,
    "INTERNAL": InternalServerError, "NETWORK_ERROR": TransportError, "TIMEOUT": TimeoutError,
    "INVALID_RESPONSE": InvalidResponseError,
}
_BY_STATUS = {400: BadRequestError, 401: UnauthorizedError, 404: NotFoundError, 413: TooLargeError, 422: GraphError,
              500: InternalServerError, 503: UnavailableError, 504: DeadlineExceededError}


def error_class(code, status):
    """The exception class for a catalogue ``code`` (or, for codes it does not know, the HTTP ``status``)."""
    return _BY_CODE.get(code) or _BY_STATUS.get(status) or GradserveError
