"""One error hierarchy for edgeq. Only the CLI prints and exits; everything else raises these."""


class EdgeqError(Exception):
    """Base of every error edgeq raises on purpose."""


class BlobFormatError(EdgeqError, ValueError):
    """A blob is truncated, corrupt, of an unknown version, or inconsistent."""


class ShapeError(EdgeqError, ValueError):
    """Shapes of inputs, layers or tensors do not fit together."""


class UnsupportedError(EdgeqError):
    """An op, encoding or layer combination edgeq does not support."""


class KernelError(EdgeqError):
    """A C kernel or the C runtime returned an error status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransportError(EdgeqError):
    """The serial link failed: no port, port vanished, garbage that never resyncs."""


class BoardTimeout(TransportError):
    """A board did not answer within the deadline."""


class ProtocolError(TransportError):
    """A reply was malformed or did not match the request."""


class BoardError(EdgeqError):
    """The board answered with an error status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class DataError(EdgeqError):
    """A dataset spec or file could not be read."""


class ExportMismatchError(EdgeqError):
    """`edgeq.export` could not prove that the written blob computes what the torch model does."""
