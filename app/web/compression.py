"""Compressed answers: pages, fragments, JSON, CSS and JavaScript, never downloads.

Litestar's CompressionMiddleware compresses every answer the client accepts compressed.
Spreadsheets, zips and PDFs are compressed already (gzip again only costs CPU and takes
away their Content-Length, so a download shows no progress), and a partial answer (206)
must stay byte for byte what its Content-Range says: only the text types below are
compressed, and never an answer that carries a Content-Encoding of its own.
"""

from __future__ import annotations

from typing import Literal

from litestar.config.compression import CompressionConfig
from litestar.datastructures import Headers
from litestar.enums import CompressionEncoding
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import Message, Scope, Send

COMPRESSIBLE = frozenset(
    {
        "text/html",
        "text/plain",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/json",
        "image/svg+xml",
    }
)
# gzip level 6 (zlib's default): nearly level 9's size for a third of its CPU on our pages.
GZIP_LEVEL = 6


def compressible(start: Message) -> bool:
    """Whether the answer this ``http.response.start`` begins is one to compress."""
    if start.get("status", 200) in (204, 206, 304):
        return False
    headers = Headers(start.get("headers", []))
    if "content-encoding" in headers or "content-range" in headers:
        return False
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type in COMPRESSIBLE or media_type.endswith("+json")  # the OpenAPI schema


class TextCompressionMiddleware(CompressionMiddleware):
    """Litestar's compression, for the text types of :data:`COMPRESSIBLE` only."""

    def create_compression_send_wrapper(
        self,
        send: Send,
        compression_encoding: Literal[CompressionEncoding.BROTLI, CompressionEncoding.GZIP] | str,
        scope: Scope,
    ) -> Send:
        compressing = super().create_compression_send_wrapper(send, compression_encoding, scope)
        chosen: Send | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal chosen
            if chosen is None:
                if message["type"] != "http.response.start":
                    await send(message)
                    return
                chosen = compressing if compressible(message) else send
            await chosen(message)

        return send_wrapper


def compression_config() -> CompressionConfig:
    return CompressionConfig(
        backend="gzip",
        gzip_compress_level=GZIP_LEVEL,
        middleware_class=TextCompressionMiddleware,
    )
