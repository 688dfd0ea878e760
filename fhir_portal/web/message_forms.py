"""Form and download helpers the patient and staff message pages share."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from fhir_portal.resources import messages
from fhir_portal.web.render import translate


def limits() -> dict[str, int]:
    return {"subject": messages.MAX_SUBJECT, "body": messages.MAX_BODY, "mb": 5}


def form_key(form: Any) -> str:
    key = str(form.get("key") or "")
    return key if messages.is_message_key(key) else messages.new_message_key()


async def read_upload(form: Any) -> tuple[str, bytes]:
    field = form.get("attachment")
    if field is None or isinstance(field, str) or not getattr(field, "filename", ""):
        return "", b""
    data = field.file.read(messages.MAX_ATTACHMENT_BYTES + 1)
    return unquote(str(field.filename)), data


def form_error(request: web.Request, error: messages.MessageError) -> dict[str, str]:
    return {error.field: translate(request, error.message, **error.values)}


def file_response(download: messages.Attachment) -> web.Response:
    """An attachment as a download that the browser never runs as a page."""
    inline = download.content_type in ("application/pdf", "image/png", "image/jpeg")
    disposition = "inline" if inline else "attachment"
    ascii_name = download.filename.encode("ascii", "replace").decode().replace('"', "")
    return web.Response(
        body=download.data,
        content_type=download.content_type,
        headers={
            "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; "
            f"filename*=UTF-8''{quote(download.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )
