"""New messages an EHR writes straight to the FHIR server: tell the patient by email.

Two paths feed one idempotent handler (``handle``):

* a FHIR REST-hook ``Subscription`` that the portal ensures at start-up
  (``Communication?category=<communication-category>|message``, payload
  ``application/fhir+json``, so the server PUTs each new or changed message to
  ``{public_url}/hooks/fhir/Communication/{id}`` with a shared-secret header derived from
  ``Settings.secret_key``); the hook view (views/hooks.py) re-reads the message from the
  server and hands it over;
* a periodic catch-up sweep (``_lastUpdated`` newer than a watermark kept in the accounts
  SQLite database), so nothing is missed while the portal, the hook or the network was
  down.

For a message addressed to a Patient by a sender that is not a patient, the handler
enqueues one email through the notifications outbox with the dedupe key
``Communication/{id}``: however often the hook and the sweep see a message, the patient
gets one email. The email says only that a message is waiting (no sender, subject or
text: those may be clinical).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from fhir_portal import keys
from fhir_portal.fhir import FhirError, FhirGateway
from fhir_portal.fhir.errors import FhirNotFound, FhirUnavailable
from fhir_portal.fhir.gateway import Resource
from fhir_portal.fhir.model import parse_datetime
from fhir_portal.i18n import N_, Translations
from fhir_portal.notify.watermarks import Watermarks
from fhir_portal.resources import messages, notifications
from fhir_portal.resources.patients import summarize
from fhir_portal.settings import Settings
from fhir_portal.web.background import KeyedLocks, keyed_locks, periodic, stop

log = logging.getLogger(__name__)

HOOK_HEADER = "X-Portal-Hook-Secret"
HOOK_PATH = "/hooks/fhir"
CRITERIA = f"Communication?category={messages.CATEGORY}"
WATERMARK = "inbox-sweep"
SWEEP_SECONDS = 60.0
# re-read a little before the watermark: a write committed late may carry an earlier
# lastUpdated; the handler is idempotent, so seeing a message twice costs nothing
OVERLAP = timedelta(seconds=30)
NOTIFY_STATUSES = frozenset({"completed", "in-progress"})

EMAIL_SUBJECT = N_("You have a new message")
EMAIL_BODY = N_(
    "You have received a new message from your care team in %(title)s.\n\n"
    "Sign in to read it: %(url)s\n\n"
    "This email was sent automatically. Please do not reply to it."
)


def hook_secret(settings: Settings) -> str:
    """The shared secret the FHIR server sends with every hook (derived, never stored)."""
    return hmac.new(
        settings.secret_key.encode(), b"fhir-portal:rest-hook:v1", hashlib.sha256
    ).hexdigest()


def hook_endpoint(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + HOOK_PATH


def subscription_id(settings: Settings) -> str:
    digest = hashlib.sha256(hook_endpoint(settings).encode()).hexdigest()[:20]
    return f"portal-inbox-{digest}"


def subscription_resource(settings: Settings, *, status: str = "requested") -> Resource:
    return {
        "resourceType": "Subscription",
        "id": subscription_id(settings),
        "status": status,
        "reason": "Tell the patient portal about new secure messages",
        "criteria": CRITERIA,
        "channel": {
            "type": "rest-hook",
            "endpoint": hook_endpoint(settings),
            "payload": "application/fhir+json",
            "header": [f"{HOOK_HEADER}: {hook_secret(settings)}"],
        },
    }


def _same_subscription(current: Resource, desired: Resource) -> bool:
    channel, wanted = current.get("channel") or {}, desired["channel"]
    return (
        current.get("status") in ("requested", "active")
        and current.get("criteria") == desired["criteria"]
        and channel.get("type") == wanted["type"]
        and channel.get("endpoint") == wanted["endpoint"]
        and channel.get("payload") == wanted["payload"]
        and list(channel.get("header") or []) == wanted["header"]
    )


async def ensure_subscription(gateway: FhirGateway, settings: Settings) -> str:
    """Create or repair the portal's REST-hook Subscription; returns its status."""
    desired = subscription_resource(settings)
    try:
        current: Resource | None = await gateway.read("Subscription", desired["id"], fresh=True)
    except FhirNotFound:
        current = None
    if current is not None and _same_subscription(current, desired):
        return str(current.get("status"))
    written = await gateway.update(desired)
    return str(written.get("status") or desired["status"])


async def subscription_off(gateway: FhirGateway, settings: Settings) -> None:
    """Stop deliveries to this portal's address for good (e.g. when it moves)."""
    await gateway.update(subscription_resource(settings, status="off"))


# -- the handler -----------------------------------------------------------------------
def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def dedupe_key(message_id: str, patient_id: str, patients: int) -> str:
    key = f"Communication/{message_id}"
    return key if patients == 1 else f"{key}/Patient/{patient_id}"


def addressed_patients(resource: Resource) -> list[str]:
    """Patients to notify: recipients of a message (from a non-patient) they have not read."""
    if resource.get("resourceType") != "Communication" or not messages.is_message(resource):
        return []
    if resource.get("status") not in NOTIFY_STATUSES or resource.get("received"):
        return []
    sender = messages.sender_ref(resource)
    if not sender or sender.startswith("Patient/"):
        return []
    return [
        ref.partition("/")[2]
        for ref in dict.fromkeys(messages.recipient_refs(resource))
        if ref.startswith("Patient/")
    ]


@dataclass
class InboxWatch:
    """The handler, the sweep and the loop that runs the sweep (one per app)."""

    gateway: FhirGateway
    settings: Settings
    translations: Translations
    marks: Watermarks | None = None
    on_enqueued: Callable[[], None] | None = None
    interval: float = SWEEP_SECONDS
    subscribed: bool = False
    enqueued: int = 0
    locks: KeyedLocks = field(default_factory=KeyedLocks)  # the app's (LOCKS) when started
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def _email(self, patient: Resource) -> tuple[str, str]:
        language = summarize(patient).language or self.settings.default_locale
        catalog = self.translations.get(language)
        url = self.settings.public_url.rstrip("/") + "/messages"
        body = catalog.gettext(EMAIL_BODY) % {"title": self.settings.title, "url": url}
        return catalog.gettext(EMAIL_SUBJECT), body

    async def handle(self, resource: Resource) -> list[str]:
        """Enqueue the "new message" email for each addressed patient (once); their ids."""
        patients = addressed_patients(resource)
        notified: list[str] = []
        for patient_id in patients:
            key = dedupe_key(str(resource["id"]), patient_id, len(patients))
            async with self.locks(key):
                try:
                    patient = await self.gateway.read("Patient", patient_id)
                except FhirNotFound:
                    continue
                address = summarize(patient).email
                if not address:
                    log.info("no email address for a message recipient; not notified")
                    continue
                subject, body = self._email(patient)
                await notifications.enqueue(
                    self.gateway,
                    patient_id=patient_id,
                    medium="email",
                    to=address,
                    subject=subject,
                    body=body,
                    dedupe_key=key,
                )
            notified.append(patient_id)
        if notified:
            self.enqueued += len(notified)
            if self.on_enqueued is not None:
                self.on_enqueued()
        return notified

    async def handle_id(self, message_id: str) -> list[str]:
        """The hook path: read the message from the server (never trust the body) and handle."""
        try:
            resource = await self.gateway.read("Communication", message_id, fresh=True)
        except FhirNotFound:
            return []
        return await self.handle(resource)

    async def sweep(self, *, now: datetime | None = None) -> int:
        """Handle every message changed since the watermark; how many patients were notified.

        The first sweep ever only sets the watermark (older messages are not announced).
        """
        if self.marks is None:
            raise RuntimeError("the sweep needs the watermark store")
        started = now or datetime.now(UTC)
        since = parse_datetime(await self.marks.get(WATERMARK))
        if since is None:
            await self.marks.set(WATERMARK, _instant(started))
            return 0
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        page = await self.gateway.search(
            "Communication",
            {
                "category": messages.CATEGORY,
                "_lastUpdated": f"gt{_instant(since - OVERLAP)}",
                "_sort": "_lastUpdated",
                "_count": "100",
            },
            fresh=True,
        )
        mark = since
        notified = 0
        while True:
            for resource in page.resources:
                updated = parse_datetime((resource.get("meta") or {}).get("lastUpdated"))
                try:
                    notified += len(await self.handle(resource))
                except FhirUnavailable:
                    raise  # the mark stays before this message: the next sweep retries it
                except FhirError as exc:  # this message cannot be handled; do not stall
                    log.warning("message %s not handled: %s", resource.get("id"), exc)
                if updated is not None and updated > mark:
                    mark = updated
                    await self.marks.set(WATERMARK, _instant(mark))
            following = await self.gateway.next_page(page)
            if following is None:
                break
            page = following
        return notified

    def wake(self) -> None:
        self._wake.set()

    async def run_round(self) -> None:
        # every round: a Subscription someone switched off or changed comes back
        if self.settings.fhir_subscription:
            try:
                await ensure_subscription(self.gateway, self.settings)
                self.subscribed = True
            except FhirError as exc:
                log.warning("message subscription not ensured: %s", type(exc).__name__)
        await self.sweep()

    async def run(self) -> None:
        await periodic("inbox sweep", self.run_round, every=self.interval, wake=self._wake)


INBOX_WATCH: web.AppKey[InboxWatch] = web.AppKey("inbox_watch", InboxWatch)


def _wake_outbox(app: web.Application) -> Callable[[], None]:
    def wake() -> None:
        from fhir_portal.notify import outbox

        outbox.wake(app)

    return wake


def watcher_for(app: web.Application) -> InboxWatch:
    """The app's watcher (or, before start-up / in a bare app, one without a sweep store)."""
    found = app.get(INBOX_WATCH)
    if found is not None:
        return found
    return InboxWatch(
        app[keys.GATEWAY], app[keys.SETTINGS], app[keys.TRANSLATIONS], None, _wake_outbox(app),
        locks=keyed_locks(app),
    )


async def inbox_watch(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: ensure the Subscription and run the catch-up sweep while the app runs."""
    settings = app[keys.SETTINGS]
    marks = await Watermarks.open(settings.accounts_db)
    watcher = InboxWatch(
        app[keys.GATEWAY], settings, app[keys.TRANSLATIONS], marks, _wake_outbox(app),
        locks=keyed_locks(app),
    )
    app[INBOX_WATCH] = watcher
    task = asyncio.create_task(watcher.run(), name="inbox-watch")
    yield
    await stop(task)
    # The Subscription stays active across a restart: switching it off and on at every
    # stop and start churns HAPI's subscription channels (seen here: deliveries stop after
    # many toggles, HAPI-2659), while a portal that is away only misses hooks, which the
    # catch-up sweep makes up for at the next start. `subscription_off` is for retiring a
    # portal address for good.
    await marks.close()

