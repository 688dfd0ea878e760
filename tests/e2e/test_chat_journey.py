"""Journeys 8 and 9: a patient chats with the Health Bot and asks for a person; an agent
takes the chat, they talk, the agent sends an article and closes the chat. Two browser
contexts (patient and agent), axe-core on every page, the knowledge pages included."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, Page, expect

from fhir_portal import keys
from fhir_portal.auth.passwords import hash_password
from fhir_portal.auth.roles import Role
from tests.e2e.conftest import LivePortal, check_accessibility, sign_in

PASSWORD = "a long e2e password"


def _setup(portal: LivePortal) -> tuple[str, str, str]:
    suffix = uuid.uuid4().hex[:8]
    gateway = portal.app[keys.GATEWAY]
    store = portal.app[keys.ACCOUNTS]
    patient_email = f"e2e-chat-{suffix}@example.org"
    agent_email = f"e2e-agent-{suffix}@contoso.example"
    family = f"Holm{suffix[:4]}"

    async def create() -> None:
        patient = await gateway.create({
            "resourceType": "Patient", "name": [{"given": ["Nora"], "family": family}],
            "birthDate": "1975-06-01",
        })
        password = await hash_password(PASSWORD)
        await store.create_account(
            patient_email, password_hash=password, roles={Role.PATIENT},
            display_name=f"Nora {family}", patient_id=patient["id"], locale="en",
            email_verified=True, profile_complete=True)
        await store.create_account(
            agent_email, password_hash=password, roles={Role.AGENT},
            display_name="Sara Agent", locale="en", email_verified=True, profile_complete=True)

    portal.run(create())
    return patient_email, agent_email, family


def _panel_message(page: Page, text: str):  # type: ignore[no-untyped-def]
    return page.locator("#chat-panel .chat-messages li").filter(has_text=text)


def test_patient_chats_with_the_bot_and_an_agent_takes_over(
        page: Page, browser: Browser, portal: LivePortal) -> None:
    patient_email, agent_email, family = _setup(portal)

    # the agent, in a second browser context, watches the chat queue
    agent_context = browser.new_context(bypass_csp=True, locale="en-GB")
    agent = agent_context.new_page()
    agent.set_default_timeout(15_000)
    try:
        sign_in(agent, portal.url, agent_email, PASSWORD)
        agent.goto(f"{portal.url}/staff/chats")
        row = agent.get_by_role("row").filter(has_text=family)
        expect(row).to_have_count(0)
        check_accessibility(agent)

        # -- the patient: "Let's chat" on the home page opens the bot
        sign_in(page, portal.url, patient_email, PASSWORD)
        expect(page).to_have_url(f"{portal.url}/")
        launcher = page.get_by_role("button", name="Let's chat")
        launcher.click()
        panel = page.locator("#chat-panel")
        expect(panel).to_be_visible()
        expect(panel.get_by_role("status")).to_contain_text("You are chatting with the Health Bot.")
        check_accessibility(page)
        panel.get_by_label("Your message").fill("When are you open?")
        panel.get_by_role("button", name="Send").click()
        expect(_panel_message(page, "Monday to Friday")).to_be_visible()
        panel.get_by_label("Your message").fill("I want to talk to a person")
        panel.get_by_role("button", name="Send").click()
        expect(_panel_message(page, "Someone from patient service will join")).to_be_visible()
        expect(panel.get_by_role("status")).to_contain_text("Waiting for a person")

        # the agent's queue shows the chat live, without a reload
        expect(row).to_contain_text("The patient asked for a person")

        # the conversation survives moving to another page: the knowledge articles
        page.get_by_role("link", name="Health articles").first.click()
        expect(page.get_by_role("heading", level=1, name="Health articles")).to_be_visible()
        expect(_panel_message(page, "I want to talk to a person")).to_be_visible()
        check_accessibility(page)
        page.get_by_label("Search the health articles").fill("diabetis")
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.locator("#results-heading")).to_contain_text("found for “diabetis”")
        page.get_by_role("link", name="Type 2 diabetes: the basics").first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Type 2 diabetes: the basics")
        check_accessibility(page)

        # -- the agent takes the chat
        check_accessibility(agent)
        row.get_by_role("button", name="Take chat").click()
        expect(agent.get_by_role("heading", level=1)).to_contain_text(family)
        expect(agent.locator(".chat-messages")).to_contain_text("I want to talk to a person")
        expect(agent.locator(".patient-facts")).to_contain_text("1975")
        check_accessibility(agent)

        # the patient is told a person joined
        expect(_panel_message(page, "Sara Agent has joined the chat.")).to_be_visible()
        expect(page.locator("#chat-panel").get_by_role("status")).to_contain_text(
            "Sara Agent from Contoso Healthcare is in the chat.")

        # they exchange messages, live both ways
        agent.get_by_label("Your message").fill("Hello Nora, how can I help?")
        agent.get_by_role("button", name="Send", exact=True).click()
        expect(_panel_message(page, "Hello Nora, how can I help?")).to_be_visible()
        panel = page.locator("#chat-panel")
        panel.get_by_label("Your message").fill("I would like to read about diabetes")
        panel.get_by_role("button", name="Send").click()
        expect(agent.locator(".chat-messages")).to_contain_text("I would like to read about diabetes")

        # the agent finds an article and sends it into the chat
        agent.get_by_label("Search the health articles").fill("diabetes")
        agent.get_by_role("button", name="Search", exact=True).click()
        agent.get_by_role("button", name="Send to chat · Type 2 diabetes: the basics").click()
        expect(_panel_message(page, "Here is an article that may help you:")).to_be_visible()
        link = _panel_message(page, "Here is an article").get_by_role(
            "link", name="Type 2 diabetes: the basics")
        expect(link).to_have_attribute("href", "/knowledge/kb-type-2-diabetes")
        check_accessibility(agent)

        # and closes the chat; the patient is told
        agent.get_by_role("button", name="Close chat").click()
        expect(agent).to_have_url(f"{portal.url}/staff/chats")
        expect(_panel_message(page, "Sara Agent has left the chat.")).to_be_visible()
        expect(page.locator("#chat-panel").get_by_role("status")).to_contain_text("This chat has ended.")
    finally:
        agent_context.close()

    # the whole transcript is on the chat page (works without JavaScript too)
    page.goto(f"{portal.url}/chat")
    expect(page.get_by_role("heading", level=1, name="Let's chat")).to_be_visible()
    expect(page.locator(".chat-messages")).to_contain_text("Hello Nora, how can I help?")
    expect(page.get_by_role("button", name="Start a new chat")).to_be_visible()
    check_accessibility(page)


def test_chat_page_without_javascript(browser: Browser, portal: LivePortal) -> None:
    patient_email, _, _ = _setup(portal)
    context = browser.new_context(bypass_csp=True, locale="en-GB", java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        sign_in(page, portal.url, patient_email, PASSWORD)
        page.get_by_role("link", name="Let's chat").click()
        expect(page).to_have_url(f"{portal.url}/chat")
        page.get_by_label("Your message").fill("Jeg har brystsmerter")
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.locator(".chat-msg--urgent")).to_contain_text("Ring 112 nu.")
        expect(page.locator(".chat-status")).to_contain_text("Waiting for a person")
        page.get_by_label("Your message").fill("   ")  # only spaces: a clear error, on the form
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_text("Write a message before you send it.")).to_be_visible()
        expect(page.get_by_label("Your message")).to_have_attribute("aria-describedby", "chat-text-error")
        # (axe-core needs JavaScript; this page is checked with it in the test above)
        page.get_by_role("button", name="End this chat and start over").click()
        expect(page.locator(".chat-messages li")).to_have_count(0)
        expect(page.locator(".chat-status")).to_contain_text("You are chatting with the Health Bot.")
    finally:
        context.close()


def test_a_message_sent_while_the_connection_drops_is_not_lost(page: Page, portal: LivePortal) -> None:
    """The first socket swallows the message and drops; the outbox resends it on the next."""
    import re

    from fhir_portal.resources import chat

    patient_email, _, _ = _setup(portal)
    connections: list[str] = []

    def route(ws) -> None:  # type: ignore[no-untyped-def]
        connections.append(ws.url)
        if len(connections) == 1:
            def swallow(message) -> None:  # type: ignore[no-untyped-def]
                if '"type":"message"' in str(message):
                    ws.close()  # the connection drops before the server ever sees it
            ws.on_message(swallow)
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r".*/chat/ws.*"), route)
    sign_in(page, portal.url, patient_email, PASSWORD)
    page.goto(f"{portal.url}/chat")
    page.get_by_label("Your message").fill("Is my message safe?")
    page.get_by_role("button", name="Send", exact=True).click()
    mine = page.locator(".chat-messages li").filter(has_text="Is my message safe?")
    expect(mine).to_have_count(1)
    expect(mine).to_have_attribute("data-id", re.compile(r".+"))  # stored and acked
    expect(page.locator(".chat-msg--bot").last).to_be_visible()
    assert len(connections) >= 2
    message_id = mine.get_attribute("data-message-id")
    assert message_id

    async def stored() -> int:
        gateway = portal.app[keys.GATEWAY]
        found = await gateway.search("Communication", {
            "identifier": f"{chat.MESSAGE_SYSTEM}|{message_id}"}, fresh=True)
        return len(found.resources)

    assert portal.run(stored()) == 1
    # a reload shows it once, from the server
    page.reload()
    expect(page.locator(".chat-messages li").filter(has_text="Is my message safe?")).to_have_count(1)
    check_accessibility(page)
