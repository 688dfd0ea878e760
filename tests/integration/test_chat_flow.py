"""The chat against the real FHIR server: bot, escalation Task, agents, WebSockets.

Each test makes its own Patient, so it never disturbs the shared demo data.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest

from fhir_portal.auth.roles import Role
from fhir_portal.chat import escalation
from fhir_portal.fhir import FhirGateway
from fhir_portal.resources import chat
from tests.integration.conftest import make_patient_account, make_staff_account
from tests.support import csrf_of, sign_in


async def new_patient(gateway: FhirGateway) -> str:
    suffix = uuid.uuid4().hex[:10]
    patient = await gateway.create({
        "resourceType": "Patient", "id": f"pat-chat-{suffix}",
        "name": [{"given": ["Chat"], "family": f"Tester{suffix[:4]}"}],
        "birthDate": "1980-04-02",
        "telecom": [{"system": "phone", "value": "+45 11 22 33 44"}],
    })
    await gateway.create({
        "resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{patient['id']}"},
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active"}]},
        "code": {"text": f"Penicillin {suffix[:4]}"},
    })
    return str(patient["id"])


@pytest.fixture
def server(client):  # type: ignore[no-untyped-def]
    """The portal the ``client`` fixture started: every browser of a test uses it (a
    second test server on the same app would start the app twice)."""
    return client.server


async def patient_client(aiohttp_client, server, accounts, patient_id: str):  # type: ignore[no-untyped-def]
    client = await aiohttp_client(server)  # another browser on the same running portal
    email = await make_patient_account(accounts, patient_id)
    response = await sign_in(client, email)
    assert response.status == 303
    return client


async def staff_client(aiohttp_client, server, accounts, role: Role):  # type: ignore[no-untyped-def]
    client = await aiohttp_client(server)  # another browser on the same running portal
    email = await make_staff_account(accounts, role)
    response = await sign_in(client, email)
    assert response.status == 303
    return client


async def say(client, text: str, message_id: str | None = None):  # type: ignore[no-untyped-def]
    page = await client.get("/chat")
    token = csrf_of(await page.text())
    return await client.post("/chat", data={
        "csrf_token": token, "text": text, "message_id": message_id or str(uuid.uuid4())},
        allow_redirects=False)


async def retire(gateway: FhirGateway, task: dict) -> None:
    """Leave no open escalation behind on the shared server (other people's queues)."""
    current = await gateway.read("Task", task["id"], fresh=True)
    if current["status"] in escalation.OPEN_STATUSES:
        await gateway.update({**current, "status": "cancelled"})


async def escalation_task(gateway: FhirGateway, patient_id: str) -> dict:
    page = await gateway.search("Task", {
        "patient": f"Patient/{patient_id}",
        "code": f"{escalation.TASK_CODE_SYSTEM}|{escalation.TASK_CODE}"}, fresh=True)
    assert len(page.resources) == 1
    return page.resources[0]


async def test_patient_asks_for_a_person_agent_takes_answers_sends_an_article_and_closes(
        aiohttp_client, server, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    patient = await patient_client(aiohttp_client, server, accounts, patient_id)

    assert (await say(patient, "Where are my test results?")).status == 303
    page = await (await patient.get("/chat")).text()
    assert "Where are my test results?" in page
    assert "Your test results and the rest of your records are under Medical records." in page
    assert 'href="/records"' in page

    await say(patient, "I want to talk to a person")
    page = await (await patient.get("/chat")).text()
    assert "Someone from patient service will join this chat" in page
    assert "Waiting for a person to join the chat" in page

    # what the EHR sees: a Task in the patient-service queue, focused on the transcript
    task = await escalation_task(gateway, patient_id)
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["priority"] == "routine"
    assert task["for"]["reference"] == f"Patient/{patient_id}"
    assert escalation.target_of(task) is chat.bot.Target.PATIENT_SERVICE
    assert task["description"] == "The patient asked for a person"
    header_id = task["focus"]["reference"].split("/")[1]
    header = await gateway.read("Communication", header_id)
    assert header["status"] == "in-progress"
    transcript = (await gateway.search("Communication", {
        "part-of": f"Communication/{header_id}", "_count": "50"}, fresh=True)).resources
    assert len(transcript) == 4  # two from the patient, two bot replies
    for message in transcript:
        assert message["category"][0]["coding"][0]["code"] == "chat"
        assert message["subject"]["reference"] == f"Patient/{patient_id}"
        assert chat.PROFILE in message["meta"]["profile"]
    senders = {m["sender"].get("display") for m in transcript}
    assert "Health Bot" in senders

    # agents see it; a clinician does not (it is for patient service)
    agent = await staff_client(aiohttp_client, server, accounts, Role.AGENT)
    queue = await (await agent.get("/staff/chats")).text()
    assert task["id"] in queue and "The patient asked for a person" in queue
    clinician = await staff_client(aiohttp_client, server, accounts, Role.CLINICIAN)
    assert task["id"] not in await (await clinician.get("/staff/chats")).text()
    assert (await clinician.get(f"/staff/chats/{task['id']}")).status == 404

    # the agent takes it; a second agent is told it is already taken
    token = csrf_of(queue)
    taken = await agent.post(f"/staff/chats/{task['id']}/accept", data={"csrf_token": token},
                             allow_redirects=False)
    assert taken.status == 303
    other = await staff_client(aiohttp_client, server, accounts, Role.AGENT)
    other_queue = await (await other.get("/staff/chats")).text()
    late = await other.post(f"/staff/chats/{task['id']}/accept",
                            data={"csrf_token": csrf_of(other_queue)})
    assert late.status == 409
    assert "Someone else has already taken this chat." in await late.text()
    # nor can the other agent open the chat (details, transcript) someone else handles
    assert (await other.get(f"/staff/chats/{task['id']}")).status == 404
    task = await gateway.read("Task", task["id"])
    assert task["status"] == "in-progress" and task["owner"]["display"] == "Test agent"

    # the agent's page: patient details, history, article search
    chat_page = await (await agent.get(f"/staff/chats/{task['id']}?q=diabetis")).text()
    assert "Tester" in chat_page and "Penicillin" in chat_page
    assert "I want to talk to a person" in chat_page
    assert "/knowledge/kb-type-2-diabetes" in chat_page
    token = csrf_of(chat_page)
    sent = await agent.post(f"/staff/chats/{task['id']}/messages", data={
        "csrf_token": token, "text": "Hello, I am here to help.", "message_id": str(uuid.uuid4())},
        allow_redirects=False)
    assert sent.status == 303
    sent = await agent.post(f"/staff/chats/{task['id']}/articles", data={
        "csrf_token": token, "article_id": "kb-type-2-diabetes", "message_id": str(uuid.uuid4())},
        allow_redirects=False)
    assert sent.status == 303

    page = await (await patient.get("/chat")).text()
    assert "Test agent has joined the chat." in page
    assert "Hello, I am here to help." in page
    assert 'href="/knowledge/kb-type-2-diabetes"' in page
    assert "Test agent from Contoso Healthcare is in the chat." in page

    # while a person is in the chat the bot keeps quiet
    await say(patient, "How do I book an appointment?")
    page = await (await patient.get("/chat")).text()
    assert "You can book an appointment yourself" not in page

    closed = await agent.post(f"/staff/chats/{task['id']}/close", data={"csrf_token": token},
                              allow_redirects=False)
    assert closed.status == 303
    task = await gateway.read("Task", task["id"])
    assert task["status"] == "completed"
    assert (await gateway.read("Communication", header_id))["status"] == "completed"
    page = await (await patient.get("/chat")).text()
    assert "Test agent has left the chat. The chat is closed." in page
    assert "This chat has ended." in page


async def test_emergency_words_escalate_urgently_to_clinicians(
        aiohttp_client, server, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    patient = await patient_client(aiohttp_client, server, accounts, patient_id)
    await say(patient, "Jeg har brystsmerter og kan ikke trække vejret")
    page = await (await patient.get("/chat")).text()
    assert "Ring 112 nu." in page
    task = await escalation_task(gateway, patient_id)
    assert task["priority"] == "urgent"
    assert escalation.target_of(task) is chat.bot.Target.CLINICIAN
    clinician = await staff_client(aiohttp_client, server, accounts, Role.CLINICIAN)
    assert task["id"] in await (await clinician.get("/staff/chats")).text()
    agent = await staff_client(aiohttp_client, server, accounts, Role.AGENT)
    assert task["id"] not in await (await agent.get("/staff/chats")).text()
    await retire(gateway, task)


async def test_two_misses_in_a_row_escalate(aiohttp_client, server, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    patient = await patient_client(aiohttp_client, server, accounts, patient_id)
    await say(patient, "xqzzy blorf")
    page = await (await patient.get("/chat")).text()
    assert "Sorry, I did not understand that." in page
    await say(patient, "wibble plonk frumious")
    task = await escalation_task(gateway, patient_id)
    assert task["description"] == "The Health Bot could not help twice in a row"
    await retire(gateway, task)


async def _ws(client, path: str, **kwargs):  # type: ignore[no-untyped-def]
    origin = str(client.make_url("/")).rstrip("/")
    headers = kwargs.pop("headers", {"Origin": origin})
    return await client.ws_connect(path, headers=headers, **kwargs)


async def _receive(ws, kind: str) -> dict:  # type: ignore[no-untyped-def]
    while True:
        message = await ws.receive(timeout=20.0)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        if data["type"] == kind:
            return data


async def test_websocket_acks_after_storing_and_dedupes_a_resend(
        aiohttp_client, server, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    patient = await patient_client(aiohttp_client, server, accounts, patient_id)
    token = csrf_of(await (await patient.get("/chat")).text())
    ws = await _ws(patient, "/chat/ws")
    await ws.send_json({"type": "hello", "csrf": token})
    history = await _receive(ws, "history")
    assert history["messages"] == []
    message_id = str(uuid.uuid4())
    await ws.send_json({"type": "message", "id": message_id, "text": "When are you open?"})
    ack = await _receive(ws, "ack")
    assert ack["id"] == message_id
    stored = await gateway.read("Communication", ack["message"]["id"])
    assert stored["payload"][0]["contentString"] == "When are you open?"
    while True:
        data = await _receive(ws, "message")
        if data["message"]["author"] == "bot":
            break
    assert "Monday to Friday" in data["message"]["text"]
    assert "+45 70 10 20 30" in data["message"]["text"]
    await ws.close()

    # the connection dropped before the client saw the ack: it resends on a new socket
    ws = await _ws(patient, f"/chat/ws?csrf={token}")
    history = await _receive(ws, "history")
    assert [m["message_id"] for m in history["messages"]][0] == message_id
    await ws.send_json({"type": "message", "id": message_id, "text": "When are you open?"})
    again = await _receive(ws, "ack")
    assert again["message"]["id"] == ack["message"]["id"]
    await ws.close()
    page = await gateway.search("Communication", {
        "identifier": f"{chat.MESSAGE_SYSTEM}|{message_id}"}, fresh=True)
    assert len(page.resources) == 1


async def test_websocket_refuses_a_foreign_origin_and_a_missing_csrf_token(
        aiohttp_client, server, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    patient = await patient_client(aiohttp_client, server, accounts, patient_id)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await _ws(patient, "/chat/ws", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await _ws(patient, "/chat/ws", headers={})
    ws = await _ws(patient, "/chat/ws")
    await ws.send_json({"type": "hello", "csrf": "wrong"})
    closing = await ws.receive(timeout=10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 4403


async def test_a_patient_cannot_join_another_patients_chat(
        aiohttp_client, server, accounts, gateway) -> None:
    anna_id, bob_id = await new_patient(gateway), await new_patient(gateway)
    anna = await patient_client(aiohttp_client, server, accounts, anna_id)
    bob = await patient_client(aiohttp_client, server, accounts, bob_id)
    await say(anna, "I want to talk to a person")
    task = await escalation_task(gateway, anna_id)
    header_id = task["focus"]["reference"].split("/")[1]
    conversation = chat.conversation_of(await gateway.read("Communication", header_id))

    # naming Anna's conversation on Bob's socket is refused outright
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await _ws(bob, f"/chat/ws?conversation={conversation.id}")
    assert refused.value.status == 403
    # Bob's own socket only ever carries Bob's (empty) chat, even while Anna chats
    token = csrf_of(await (await bob.get("/chat")).text())
    ws = await _ws(bob, f"/chat/ws?csrf={token}")
    assert (await _receive(ws, "history"))["messages"] == []
    await say(anna, "Are you there?")
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive(timeout=2)
    await ws.close()
    # and Bob's chat page shows nothing of Anna's
    assert "Are you there?" not in await (await bob.get("/chat")).text()
    # patients are not staff
    assert (await bob.get("/staff/chats")).status == 403
    assert (await bob.get(f"/staff/chats/{task['id']}")).status == 403
    await retire(gateway, task)


async def test_staff_live_updates_over_websockets(aiohttp_client, server, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    patient = await patient_client(aiohttp_client, server, accounts, patient_id)
    agent = await staff_client(aiohttp_client, server, accounts, Role.AGENT)
    token = csrf_of(await (await agent.get("/staff/chats")).text())
    queue_ws = await _ws(agent, f"/staff/chats/ws?csrf={token}")
    await _receive(queue_ws, "ready")
    await say(patient, "Kan jeg tale med et menneske?")
    await _receive(queue_ws, "queue")  # the new escalation was announced
    task = await escalation_task(gateway, patient_id)
    await agent.post(f"/staff/chats/{task['id']}/accept", data={"csrf_token": token})

    patient_token = csrf_of(await (await patient.get("/chat")).text())
    patient_ws = await _ws(patient, f"/chat/ws?csrf={patient_token}")
    history = await _receive(patient_ws, "history")
    assert history["status"] == "person"
    staff_ws = await _ws(agent, f"/staff/chats/{task['id']}/ws?csrf={token}")
    await _receive(staff_ws, "history")

    message_id = str(uuid.uuid4())
    await staff_ws.send_json({"type": "message", "id": message_id, "text": "Hej, hvordan kan jeg hjælpe?"})
    assert (await _receive(staff_ws, "ack"))["id"] == message_id
    seen = await _receive(patient_ws, "message")
    assert seen["message"]["text"] == "Hej, hvordan kan jeg hjælpe?"
    assert seen["message"]["author"] == "staff"

    await patient_ws.send_json({"type": "message", "id": str(uuid.uuid4()), "text": "Tak!"})
    heard = await _receive(staff_ws, "message")
    assert heard["message"]["text"] == "Tak!" and heard["message"]["author"] == "patient"
    for ws in (queue_ws, patient_ws, staff_ws):
        await ws.close()
    await retire(gateway, task)


async def test_two_agents_accepting_at_the_same_moment_have_one_winner(
        aiohttp_client, server, accounts, gateway) -> None:
    from fhir_portal.auth.roles import Principal

    patient_id = await new_patient(gateway)
    patient = await patient_client(aiohttp_client, server, accounts, patient_id)
    await say(patient, "Jeg vil gerne tale med et menneske")
    task = await escalation_task(gateway, patient_id)
    agents = [Principal(account_id=900 + n, email=f"a{n}@x", display_name=f"Agent {n}",
                        roles=frozenset({Role.AGENT})) for n in range(2)]
    results = await asyncio.gather(
        *(chat.accept(gateway, who, task["id"], joined_text=f"{who.display_name} joined")
          for who in agents), return_exceptions=True)
    winners = [r for r in results if isinstance(r, chat.StaffChat)]
    losers = [r for r in results if isinstance(r, chat.ChatTaken)]
    assert len(winners) == 1 and len(losers) == 1, results
    stored = await gateway.read("Task", task["id"], fresh=True)
    assert stored["status"] == "in-progress"
    assert stored["owner"]["display"] == winners[0].task.owner_name
    joined = [m for m in winners[0].messages if m.author == "system"]
    assert len(joined) == 1  # only the winner's arrival is announced
    await retire(gateway, task)


async def test_signing_out_closes_the_chat_socket(aiohttp_client, server, accounts, gateway) -> None:
    patient_id = await new_patient(gateway)
    patient = await patient_client(aiohttp_client, server, accounts, patient_id)
    token = csrf_of(await (await patient.get("/chat")).text())
    ws = await _ws(patient, f"/chat/ws?csrf={token}")
    await _receive(ws, "history")
    signed_out = await patient.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert signed_out.status in (302, 303)
    await ws.send_json({"type": "message", "id": str(uuid.uuid4()), "text": "still there?"})
    closing = await ws.receive(timeout=10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 4401
    page = await gateway.search("Communication", {"subject": f"Patient/{patient_id}"}, fresh=True)
    assert page.resources == []  # nothing was stored after signing out
