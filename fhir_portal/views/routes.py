"""Every route of the portal, in one list."""

from __future__ import annotations

from aiohttp import web

from fhir_portal import keys
from fhir_portal.app_paths import STATIC_DIR
from fhir_portal.i18n import N_
from fhir_portal.views import (
    account,
    activate,
    activities,
    appointments,
    auth,
    chat,
    checkin,
    demo_mailbox,
    health,
    home,
    hooks,
    knowledge,
    language,
    messages,
    profile,
    queue,
    records,
    register,
    smart,
    staff,
    staff_chats,
    staff_messages,
)
from fhir_portal.web.render import NAV, add_nav_badge

ID = r"{id:[A-Za-z0-9\-.]{1,64}}"  # a FHIR id (R4 id syntax) in an address
TASK_ID = r"{task_id:[A-Za-z0-9\-.]{1,64}}"
TOKEN = r"{token:[A-Za-z0-9_\-.]{20,300}}"  # noqa: S105 - a signed check-in link, not a secret

# The main navigation: (route name, path, label). An entry shows only once its route is
# registered below; labels are translated when shown.
NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("home", "/", N_("Home")),
    ("appointments", "/appointments", N_("Appointments")),
    ("messages", "/messages", N_("Messages")),
    ("records", "/records", N_("Medical records")),
    ("activities", "/activities", N_("Activities")),
    ("knowledge", "/knowledge", N_("Health articles")),
)


def setup(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get("/", home.home, name="home"),
            web.get("/healthz", health.healthz, name="healthz"),
            web.get("/login", auth.login_form, name="login"),
            web.post("/login", auth.login, name="login-submit"),
            web.post("/logout", auth.logout, name="logout"),
            web.get("/logout", auth.logout_form, name="logout-form"),
            web.post("/language", language.switch, name="language"),
            web.static("/static", STATIC_DIR, name="static", append_version=True),
            # access: accounts, sign-in (local, OIDC, SMART), profile, staff console
            web.get("/register", register.register_form, name="register"),
            web.post("/register", register.register_submit, name="register-submit"),
            web.get("/register/verify", register.verify_email, name="register-verify"),
            web.post("/register/resend", register.resend_link, name="register-resend"),
            web.get("/activate", activate.activate_form, name="activate"),
            web.post("/activate", activate.activate_submit, name="activate-submit"),
            web.get("/password-reset", auth.reset_form, name="password-reset"),
            web.post("/password-reset", auth.reset_request, name="password-reset-submit"),
            web.get(
                r"/password-reset/{token:[A-Za-z0-9_\-]{20,100}}",
                auth.reset_token_form,
                name="password-reset-token",
            ),
            web.post(
                r"/password-reset/{token:[A-Za-z0-9_\-]{20,100}}",
                auth.reset_submit,
                name="password-reset-token-submit",
            ),
            web.post("/oidc/start", auth.oidc_start, name="oidc-start"),
            web.get("/oidc/callback", auth.oidc_callback, name="oidc-callback"),
            web.get("/smart/launch", smart.launch, name="smart-launch"),
            web.get("/smart/callback", smart.callback, name="smart-callback"),
            web.get("/profile", profile.profile_form, name="profile"),
            web.post("/profile", profile.profile_submit, name="profile-submit"),
            web.get("/account", account.account_page, name="account"),
            web.post("/account/password", account.password_submit, name="account-password"),
            web.post("/account/sign-out-others", account.sign_out_others, name="account-sign-out-others"),
            web.post(
                "/account/sign-out-everywhere",
                account.sign_out_everywhere,
                name="account-sign-out-everywhere",
            ),
            web.post("/account/unlink", account.unlink_identity, name="account-unlink"),
            web.get("/staff", staff.console, name="staff"),
            # secure messages (patients, clinicians) and the FHIR server's REST hook
            web.get("/messages", messages.inbox, name="messages"),
            web.get("/messages/sent", messages.sent, name="messages-sent"),
            web.get("/messages/new", messages.compose, name="messages-new"),
            web.post("/messages/new", messages.send, name="messages-send"),
            web.get(rf"/messages/{ID}", messages.thread, name="messages-thread"),
            web.post(rf"/messages/{ID}/reply", messages.reply, name="messages-reply"),
            web.get(rf"/messages/{ID}/attachment", messages.attachment, name="messages-attachment"),
            web.get("/staff/messages", staff_messages.inbox, name="staff-messages"),
            web.get(rf"/staff/messages/{ID}", staff_messages.thread, name="staff-messages-thread"),
            web.post(rf"/staff/messages/{ID}/reply", staff_messages.reply, name="staff-messages-reply"),
            web.get(
                rf"/staff/messages/{ID}/attachment",
                staff_messages.attachment,
                name="staff-messages-attachment",
            ),
            web.route("*", r"/hooks/fhir{tail:(/.*)?}", hooks.fhir_hook, name="fhir-hook"),
            # medical records and activities
            web.get("/records", records.overview, name="records"),
            web.get("/records/medications", records.medications, name="records-medications"),
            web.get("/records/allergies", records.allergies, name="records-allergies"),
            web.get("/records/conditions", records.conditions, name="records-conditions"),
            web.get("/records/visits", records.visits, name="records-visits"),
            web.get(rf"/records/visits/{ID}", records.visit, name="records-visit"),
            web.get("/records/care-plans", records.care_plans, name="records-care-plans"),
            web.get("/records/care-teams", records.care_teams, name="records-care-teams"),
            web.get("/records/download", records.download, name="records-download"),
            web.get("/activities", activities.index, name="activities"),
            web.post("/activities/done", activities.mark_done, name="activities-done"),
            # knowledge articles and the chat (Health Bot, escalation to staff)
            web.get("/knowledge", knowledge.index, name="knowledge"),
            web.get(rf"/knowledge/{ID}", knowledge.article, name="knowledge-article"),
            web.get("/chat", chat.chat_page, name="chat"),
            web.post("/chat", chat.post_message, name="chat-send"),
            web.post("/chat/new", chat.new_chat, name="chat-new"),
            web.get("/chat/ws", chat.patient_socket, name="chat-ws"),
            web.get("/staff/chats", staff_chats.queue, name="staff-chats"),
            web.get("/staff/chats/ws", staff_chats.queue_socket, name="staff-chats-ws"),
            web.get(rf"/staff/chats/{TASK_ID}", staff_chats.chat_view, name="staff-chats-chat"),
            web.get(rf"/staff/chats/{TASK_ID}/ws", staff_chats.chat_socket, name="staff-chats-chat-ws"),
            web.post(rf"/staff/chats/{TASK_ID}/accept", staff_chats.accept, name="staff-chats-accept"),
            web.post(
                rf"/staff/chats/{TASK_ID}/messages", staff_chats.post_message, name="staff-chats-message"
            ),
            web.post(
                rf"/staff/chats/{TASK_ID}/articles", staff_chats.send_article, name="staff-chats-article"
            ),
            web.post(rf"/staff/chats/{TASK_ID}/close", staff_chats.close, name="staff-chats-close"),
            # appointments, booking, the instant queue, check-in
            web.get("/appointments", appointments.index, name="appointments"),
            web.get("/appointments/new", appointments.wizard, name="appointments-new"),
            web.post("/appointments/new/confirm", appointments.confirm, name="appointments-confirm"),
            web.post("/appointments/new/book", appointments.book, name="appointments-book"),
            web.post("/appointments/queue/join", appointments.join_queue, name="appointments-queue-join"),
            web.get(rf"/appointments/{ID}", appointments.detail, name="appointments-detail"),
            web.get(rf"/appointments/{ID}/cancel", appointments.cancel_form, name="appointments-cancel-form"),
            web.post(rf"/appointments/{ID}/cancel", appointments.cancel, name="appointments-cancel"),
            web.get(rf"/appointments/{ID}/queue", queue.waiting_room, name="appointments-queue"),
            web.get(rf"/appointments/{ID}/queue.json", queue.waiting_json, name="appointments-queue-json"),
            web.post(rf"/appointments/{ID}/queue/leave", queue.leave, name="appointments-queue-leave"),
            web.get("/staff/queue", queue.staff_queue, name="staff-queue"),
            web.post("/staff/queue/take", queue.staff_take, name="staff-queue-take"),
            web.get(rf"/checkin/{TOKEN}", checkin.start, name="checkin"),
            web.get(rf"/checkin/{TOKEN}/details", checkin.details, name="checkin-details"),
            web.route("*", rf"/checkin/{TOKEN}/personal", checkin.personal, name="checkin-personal"),
            web.route("*", rf"/checkin/{TOKEN}/insurance", checkin.insurance, name="checkin-insurance"),
            web.route("*", rf"/checkin/{TOKEN}/join", checkin.join, name="checkin-join"),
            web.get(rf"/checkin/{TOKEN}/done", checkin.done, name="checkin-done"),
        ]
    )
    if app[keys.SETTINGS].demo_mailbox:  # demo only: the in-process SMTP sink's mailbox
        app.router.add_get("/demo/mailbox", demo_mailbox.mailbox_page, name="demo-mailbox")
    add_nav_badge(app, "/messages", messages.nav_badge)
    queue.setup(app)
    names = set(app.router.named_resources())
    app[NAV] = tuple((path, label) for name, path, label in NAVIGATION if name in names)
