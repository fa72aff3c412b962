"""The HTTP/1.1 protocol `gemini-flow serve` runs under uvicorn: httptools, with a bound on the head.

uvicorn parses HTTP with httptools (C) when it is installed, with h11 (pure Python) otherwise;
httptools answers about twice as many requests per second on 2 cores (benchmarks/server.py's
floor). But uvicorn's httptools protocol keeps a request's line and headers whatever their size:
one client sending a 300 MiB header took the server from 33 to 633 MiB (h11 refuses anything past
16 KiB). So the server runs a subclass that counts the bytes of each request's head and answers
431 and closes the connection past :data:`MAX_HEAD`; with h11 the same bound is h11's own limit.

It leans on uvicorn's ``HttpToolsProtocol`` (its ``data_received`` and parser callbacks); if they
are not there, the server falls back to h11 rather than run unbounded (tests/test_server.py sends
an oversized head to whichever is used).
"""

from __future__ import annotations

import json
from typing import Any

# The request line and headers of one request, at most: far more than any client sends (a token
# is 46 characters; URLs are bounded by the query parameters' schemas), far less than memory.
MAX_HEAD = 64 * 1024


def _refusal() -> bytes:
    from gemini_flow_cli.errors import GeminiFlowError

    error = GeminiFlowError("INVALID_INPUT", f"the request line and headers are larger than {MAX_HEAD} bytes",
                            details={"limit": MAX_HEAD})
    body = json.dumps(error.to_json()).encode()
    return (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def http_protocol() -> Any:
    """What to give ``uvicorn.Config(http=...)``: the bounded httptools protocol class, or
    ``"h11"`` when httptools (or the uvicorn protocol it extends) is not there."""
    try:
        import httptools  # noqa: F401
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "h11"
    if not all(hasattr(HttpToolsProtocol, name) for name in
               ("data_received", "on_headers_complete", "on_message_complete")):
        return "h11"
    refusal = _refusal()

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing a request head longer than :data:`MAX_HEAD`.

        The bytes of each read are counted while a request's head is incomplete after it, from
        the first read after the previous request ended (or the connection's start): the bound
        holds for one huge header as for many small ones, give or take a read (at most 256 KiB),
        and a body arriving in the same read as its head is never counted.
        """

        _in_head = True  # the current request's line and headers are not all in yet
        _head_bytes = 0
        _ended = False  # a request ended during the current read

        def data_received(self, data: bytes) -> None:
            self._ended = False
            super().data_received(data)
            if self._in_head and not self._ended and not self.transport.is_closing():
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD:
                    self.transport.write(refusal)
                    self.transport.close()

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes, self._ended = True, 0, True

    return BoundedHttpToolsProtocol
