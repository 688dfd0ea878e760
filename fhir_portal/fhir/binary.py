"""Files an attachment names by URL (``Attachment.url``) instead of carrying them inline.

EHRs often write a message's file as a ``Binary`` on the same FHIR server and put only its
address in the attachment. A Binary lies in no patient compartment, so it may be read only
through the resource that links it, and only when:

* the URL is one of that resource's own attachment URLs,
* it names a Binary on this FHIR server (``Binary/<id>`` or ``<base>/Binary/<id>``; never
  another host: the portal fetches nothing a message points it at),
* the Binary's ``securityContext``, if it has one, is that resource or one of the
  references the caller allows (e.g. the signed-in patient).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_portal.fhir.errors import FhirNotFound
from fhir_portal.fhir.gateway import FhirGateway, Resource, is_valid_id, reference_of


def attachment_urls(resource: Any) -> Iterator[str]:
    """Every ``url`` of an Attachment-like element anywhere in the resource."""
    if isinstance(resource, dict):
        url = resource.get("url")
        if isinstance(url, str) and ("contentType" in resource or "title" in resource):
            yield url
        for value in resource.values():
            yield from attachment_urls(value)
    elif isinstance(resource, list):
        for value in resource:
            yield from attachment_urls(value)


def binary_id(base_url: str, url: str) -> str | None:
    """The id of the Binary on this server that ``url`` names, else None."""
    base = base_url.rstrip("/") + "/"
    path = url[len(base):] if url.startswith(base) else url
    if "://" in path or "?" in path or "#" in path:
        return None
    kind, _, ident = path.partition("/")
    if kind != "Binary" or not is_valid_id(ident):
        return None
    return ident


async def linked_binary(
    gateway: FhirGateway, owner: Resource, url: str, *, contexts: frozenset[str] = frozenset()
) -> Resource:
    """The Binary ``owner`` links at ``url`` (FhirNotFound when any rule above fails)."""
    if url not in set(attachment_urls(owner)):
        raise FhirNotFound("Binary: not linked here")
    ident = binary_id(gateway.base_url, url)
    if ident is None:
        raise FhirNotFound("Binary: not on this server")
    binary = await gateway.read("Binary", ident)
    context = ((binary.get("securityContext") or {}).get("reference") or "").strip()
    if context and context not in contexts | {reference_of(owner)}:
        raise FhirNotFound("Binary: belongs to something else")
    return binary
