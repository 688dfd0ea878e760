"""Message rules without a server: attachment checks, thread model, who gets an email,
the hook's secret, and the Subscription the portal asks for."""

from __future__ import annotations

import pytest

from fhir_portal.notify import inbox_watch
from fhir_portal.resources import messages
from fhir_portal.resources.directory import DirectoryNames

PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)
JPEG = b"\xff\xd8\xff\xe0" + bytes(20)
PDF = b"%PDF-1.7\n" + bytes(20)


@pytest.mark.parametrize(
    ("name", "data", "kind", "stored_as"),
    [
        ("scan.pdf", PDF, "application/pdf", "scan.pdf"),
        ("photo.PNG", PNG, "image/png", "photo.PNG"),
        ("IMG_1.jpeg", JPEG, "image/jpeg", "IMG_1.jpeg"),
        ("really-a-pdf.png", PDF, "application/pdf", "really-a-pdf.pdf"),
        ("../../etc/passwd", PNG, "image/png", "passwd.png"),
        ('C:\\Users\\me\\"evil".jpg', JPEG, "image/jpeg", "evil.jpg"),
    ],
)
def test_attachments_are_typed_by_their_first_bytes(name, data, kind, stored_as) -> None:
    checked = messages.check_attachment(name, data)
    assert checked is not None
    assert (checked.content_type, checked.filename, checked.data) == (kind, stored_as, data)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"<html><script>alert(1)</script>", "Attach a PDF, PNG or JPEG file."),
        (b"GIF89a" + bytes(10), "Attach a PDF, PNG or JPEG file."),
        (PDF + bytes(messages.MAX_ATTACHMENT_BYTES), "The file is larger than 5 MB."),
    ],
)
def test_other_files_are_refused(data, problem) -> None:
    with pytest.raises(messages.MessageError) as caught:
        messages.check_attachment("file.pdf", data)
    assert caught.value.field == "attachment" and caught.value.message == problem


def test_no_file_is_no_attachment() -> None:
    assert messages.check_attachment("", b"") is None


def _message(ident: str, sender: str, recipient: str, **extra) -> dict:
    return {
        "resourceType": "Communication",
        "id": ident,
        "status": "completed",
        "category": [{"coding": [{"system": messages.CATEGORY_SYSTEM, "code": "message"}]}],
        "subject": {"reference": "Patient/p1"},
        "sender": {"reference": sender},
        "recipient": [{"reference": recipient}],
        **extra,
    }


def test_thread_roots_and_reply_targets() -> None:
    root = _message("m1", "Practitioner/d1", "Patient/p1")
    answer = _message("m2", "Patient/p1", "Practitioner/d1",
                      partOf=[{"reference": "Communication/m1"}])
    assert messages.thread_root(root) == "m1" and messages.thread_root(answer) == "m1"
    # the patient answers the newest message from someone else
    answered, to = messages._reply_target([root, answer], "Patient/p1")
    assert answered is root and to == "Practitioner/d1"
    # a thread the patient started (no answer yet) continues with its addressee
    started = _message("m3", "Patient/p1", "Practitioner/d2")
    answered, to = messages._reply_target([started], "Patient/p1")
    assert answered is started and to == "Practitioner/d2"


def test_unread_means_addressed_to_me_and_not_received() -> None:
    names = DirectoryNames(None)  # type: ignore[arg-type]  # nothing to look up
    mine = messages._item(_message("m1", "Practitioner/d1", "Patient/p1"), names, "Patient/p1")
    read = messages._item(
        _message("m2", "Practitioner/d1", "Patient/p1", received="2026-01-01T10:00:00Z"),
        names, "Patient/p1",
    )
    outgoing = messages._item(_message("m3", "Patient/p1", "Practitioner/d1"), names, "Patient/p1")
    assert (mine.unread, read.unread, outgoing.unread) == (True, False, False)


@pytest.mark.parametrize(
    ("changes", "notified"),
    [
        ({}, ["p1"]),
        ({"sender": {"reference": "Patient/p1"}}, []),
        ({"sender": {"reference": "Organization/o1"}}, ["p1"]),
        ({"received": "2026-01-01T10:00:00Z"}, []),
        ({"status": "entered-in-error"}, []),
        ({"recipient": [{"reference": "Practitioner/d2"}]}, []),
        ({"category": [{"coding": [{"system": messages.CATEGORY_SYSTEM, "code": "chat"}]}]}, []),
        ({"recipient": [{"reference": "Patient/p1"}, {"reference": "Patient/p2"}]}, ["p1", "p2"]),
    ],
)
def test_who_is_told_about_a_new_message(changes, notified) -> None:
    message = {**_message("m1", "Practitioner/d1", "Patient/p1"), **changes}
    assert inbox_watch.addressed_patients(message) == notified


def test_the_subscription_the_portal_asks_for(settings) -> None:
    resource = inbox_watch.subscription_resource(settings)
    assert resource["criteria"] == (
        "Communication?category="
        "http://fhir-portal.example.org/fhir/CodeSystem/communication-category|message"
    )
    assert resource["channel"]["type"] == "rest-hook"
    assert resource["channel"]["endpoint"] == "http://127.0.0.1:8080/hooks/fhir"
    assert resource["channel"]["payload"] == "application/fhir+json"
    secret = inbox_watch.hook_secret(settings)
    assert resource["channel"]["header"] == [f"X-Portal-Hook-Secret: {secret}"]
    assert settings.secret_key not in secret and len(secret) == 64


async def test_the_hook_refuses_a_missing_or_wrong_secret(client) -> None:
    for headers in ({}, {inbox_watch.HOOK_HEADER: "guess"}):
        response = await client.put("/hooks/fhir/Communication/m1", json={}, headers=headers)
        assert response.status == 401


async def test_message_pages_need_a_signed_in_patient(client) -> None:
    for path in ("/messages", "/messages/new", "/messages/m1", "/staff/messages"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login")
