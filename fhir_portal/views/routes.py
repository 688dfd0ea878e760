"""Every route of the portal, in one list."""

from __future__ import annotations

from aiohttp import web

from fhir_portal import keys
from fhir_portal.app_paths import STATIC_DIR
from fhir_portal.i18n import N_
from fhir_portal.views import auth, health, home, language
from fhir_portal.views import hooks, staff_messages
from fhir_portal.views import messages as messages_views
from fhir_portal.views import activities as activities_views
from fhir_portal.views import records as records_views
from fhir_portal.views import account as account_views
from fhir_portal.views import activate as activate_views
from fhir_portal.views import profile as profile_views
from fhir_portal.views import register as register_views
from fhir_portal.views import smart as smart_views
from fhir_portal.views import staff as staff_views
from fhir_portal.views import chat as chat_views
from fhir_portal.views import knowledge as knowledge_views
from fhir_portal.views import staff_chats
from fhir_portal.views import appointments as appointments_views
from fhir_portal.views import checkin as checkin_views
from fhir_portal.views import demo_mailbox
from fhir_portal.views import queue as queue_views
from fhir_portal.web.render import NAV, add_nav_badge

MSG_ID = r"{id:[A-Za-z0-9\-.]{1,64}}"  # a FHIR id in the messages routes

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
            web.get("/register", register_views.register_form, name="register"),
            web.post("/register", register_views.register_submit, name="register-submit"),
            web.get("/register/verify", register_views.verify_email, name="register-verify"),
            web.post("/register/resend", register_views.resend_link, name="register-resend"),
            web.get("/activate", activate_views.activate_form, name="activate"),
            web.post("/activate", activate_views.activate_submit, name="activate-submit"),
            web.get("/password-reset", auth.reset_form, name="password-reset"),
            web.post("/password-reset", auth.reset_request, name="password-reset-submit"),
            web.get(r"/password-reset/{token:[A-Za-z0-9_\-]{20,100}}", auth.reset_token_form,
                    name="password-reset-token"),
            web.post(r"/password-reset/{token:[A-Za-z0-9_\-]{20,100}}", auth.reset_submit,
                     name="password-reset-token-submit"),
            web.post("/oidc/start", auth.oidc_start, name="oidc-start"),
            web.get("/oidc/callback", auth.oidc_callback, name="oidc-callback"),
            web.get("/smart/launch", smart_views.launch, name="smart-launch"),
            web.get("/smart/callback", smart_views.callback, name="smart-callback"),
            web.get("/profile", profile_views.profile_form, name="profile"),
            web.post("/profile", profile_views.profile_submit, name="profile-submit"),
            web.get("/account", account_views.account_page, name="account"),
            web.post("/account/password", account_views.password_submit, name="account-password"),
            web.post("/account/sign-out-others", account_views.sign_out_others,
                     name="account-sign-out-others"),
            web.post("/account/sign-out-everywhere", account_views.sign_out_everywhere,
                     name="account-sign-out-everywhere"),
            web.post("/account/unlink", account_views.unlink_identity, name="account-unlink"),
            web.get("/staff", staff_views.console, name="staff"),
            # secure messages (patients, clinicians) and the FHIR server's REST hook
            web.get("/messages", messages_views.inbox, name="messages"),
            web.get("/messages/sent", messages_views.sent, name="messages-sent"),
            web.get("/messages/new", messages_views.compose, name="messages-new"),
            web.post("/messages/new", messages_views.send, name="messages-send"),
            web.get(rf"/messages/{MSG_ID}", messages_views.thread, name="messages-thread"),
            web.post(rf"/messages/{MSG_ID}/reply", messages_views.reply, name="messages-reply"),
            web.get(rf"/messages/{MSG_ID}/attachment", messages_views.attachment,
                    name="messages-attachment"),
            web.get("/staff/messages", staff_messages.inbox, name="staff-messages"),
            web.get(rf"/staff/messages/{MSG_ID}", staff_messages.thread, name="staff-messages-thread"),
            web.post(rf"/staff/messages/{MSG_ID}/reply", staff_messages.reply,
                     name="staff-messages-reply"),
            web.get(rf"/staff/messages/{MSG_ID}/attachment", staff_messages.attachment,
                    name="staff-messages-attachment"),
            web.route("*", r"/hooks/fhir{tail:(/.*)?}", hooks.fhir_hook, name="fhir-hook"),
            # medical records and activities
            web.get("/records", records_views.overview, name="records"),
            web.get("/records/medications", records_views.medications, name="records-medications"),
            web.get("/records/allergies", records_views.allergies, name="records-allergies"),
            web.get("/records/conditions", records_views.conditions, name="records-conditions"),
            web.get("/records/visits", records_views.visits, name="records-visits"),
            web.get(r"/records/visits/{id:[A-Za-z0-9\-.]{1,64}}", records_views.visit, name="records-visit"),
            web.get("/records/care-plans", records_views.care_plans, name="records-care-plans"),
            web.get("/records/care-teams", records_views.care_teams, name="records-care-teams"),
            web.get("/records/download", records_views.download, name="records-download"),
            web.get("/activities", activities_views.index, name="activities"),
            web.post("/activities/done", activities_views.mark_done, name="activities-done"),
            # knowledge articles and the chat (Health Bot, escalation to staff)
            web.get("/knowledge", knowledge_views.index, name="knowledge"),
            web.get(r"/knowledge/{id:[A-Za-z0-9\-.]{1,64}}", knowledge_views.article, name="knowledge-article"),
            web.get("/chat", chat_views.chat_page, name="chat"),
            web.post("/chat", chat_views.post_message, name="chat-send"),
            web.post("/chat/new", chat_views.new_chat, name="chat-new"),
            web.get("/chat/ws", chat_views.patient_socket, name="chat-ws"),
            web.get("/staff/chats", staff_chats.queue, name="staff-chats"),
            web.get("/staff/chats/ws", staff_chats.queue_socket, name="staff-chats-ws"),
            web.get(r"/staff/chats/{task_id:[A-Za-z0-9\-.]{1,64}}", staff_chats.chat_view, name="staff-chats-chat"),
            web.get(r"/staff/chats/{task_id:[A-Za-z0-9\-.]{1,64}}/ws", staff_chats.chat_socket, name="staff-chats-chat-ws"),
            web.post(r"/staff/chats/{task_id:[A-Za-z0-9\-.]{1,64}}/accept", staff_chats.accept, name="staff-chats-accept"),
            web.post(r"/staff/chats/{task_id:[A-Za-z0-9\-.]{1,64}}/messages", staff_chats.post_message, name="staff-chats-message"),
            web.post(r"/staff/chats/{task_id:[A-Za-z0-9\-.]{1,64}}/articles", staff_chats.send_article, name="staff-chats-article"),
            web.post(r"/staff/chats/{task_id:[A-Za-z0-9\-.]{1,64}}/close", staff_chats.close, name="staff-chats-close"),
            # appointments, booking, the instant queue, check-in
            web.get("/appointments", appointments_views.index, name="appointments"),
            web.get("/appointments/new", appointments_views.wizard, name="appointments-new"),
            web.post("/appointments/new/confirm", appointments_views.confirm,
                     name="appointments-confirm"),
            web.post("/appointments/new/book", appointments_views.book, name="appointments-book"),
            web.post("/appointments/queue/join", appointments_views.join_queue,
                     name="appointments-queue-join"),
            web.get(r"/appointments/{id:[A-Za-z0-9\-.]{1,64}}", appointments_views.detail,
                    name="appointments-detail"),
            web.get(r"/appointments/{id:[A-Za-z0-9\-.]{1,64}}/cancel", appointments_views.cancel_form,
                    name="appointments-cancel-form"),
            web.post(r"/appointments/{id:[A-Za-z0-9\-.]{1,64}}/cancel", appointments_views.cancel,
                     name="appointments-cancel"),
            web.get(r"/appointments/{id:[A-Za-z0-9\-.]{1,64}}/queue", queue_views.waiting_room,
                    name="appointments-queue"),
            web.get(r"/appointments/{id:[A-Za-z0-9\-.]{1,64}}/queue.json", queue_views.waiting_json,
                    name="appointments-queue-json"),
            web.post(r"/appointments/{id:[A-Za-z0-9\-.]{1,64}}/queue/leave", queue_views.leave,
                     name="appointments-queue-leave"),
            web.get("/staff/queue", queue_views.staff_queue, name="staff-queue"),
            web.post("/staff/queue/take", queue_views.staff_take, name="staff-queue-take"),
            web.get(r"/checkin/{token:[A-Za-z0-9_\-.]{20,300}}", checkin_views.start, name="checkin"),
            web.get(r"/checkin/{token:[A-Za-z0-9_\-.]{20,300}}/details", checkin_views.details, name="checkin-details"),
            web.route("*", r"/checkin/{token:[A-Za-z0-9_\-.]{20,300}}/personal", checkin_views.personal,
                      name="checkin-personal"),
            web.route("*", r"/checkin/{token:[A-Za-z0-9_\-.]{20,300}}/insurance", checkin_views.insurance,
                      name="checkin-insurance"),
            web.route("*", r"/checkin/{token:[A-Za-z0-9_\-.]{20,300}}/join", checkin_views.join, name="checkin-join"),
            web.get(r"/checkin/{token:[A-Za-z0-9_\-.]{20,300}}/done", checkin_views.done, name="checkin-done"),
        ]
    )
    if app[keys.SETTINGS].demo_mailbox:  # demo only: the in-process SMTP sink's mailbox
        app.router.add_get("/demo/mailbox", demo_mailbox.mailbox_page, name="demo-mailbox")
    add_nav_badge(app, "/messages", messages_views.nav_badge)
    names = set(app.router.named_resources())
    app[NAV] = tuple((path, label) for name, path, label in NAVIGATION if name in names)
