"""File answers."""

from __future__ import annotations

from litestar import Response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_download(data: bytes, quoted_name: str) -> Response[bytes]:
    """An .xlsx answer saved under ``quoted_name`` (percent-encoded UTF-8)."""
    return Response(
        data,
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quoted_name}"},
    )
