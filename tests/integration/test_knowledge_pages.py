"""Health articles against the real FHIR server: browse, search, read; the index follows
articles published (or withdrawn) through FHIR."""

from __future__ import annotations

import base64
import uuid

from fhir_portal.auth.roles import Role
from fhir_portal.fhir.scope import DirectoryReader
from fhir_portal.resources.knowledge import LIBRARY, TOPIC_SYSTEM
from tests.integration.conftest import make_patient_account, make_staff_account
from tests.support import sign_in


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_browse_search_and_read_in_both_languages(client, accounts, gateway) -> None:
    email = await make_patient_account(accounts, "pat-anna")
    await sign_in(client, email)
    page = await client.get("/knowledge")
    assert page.status == 200
    html = await page.text()
    assert "Heart and circulation" in html and "Type 2 diabetes: the basics" in html

    html = await (await client.get("/knowledge?q=diabetis")).text()
    assert html.index("Type 2 diabetes: the basics") < html.index("Blood sugar monitoring")

    html = await (await client.get("/knowledge?q=eczema&topic=heart")).text()
    assert "Eczema (atopic dermatitis)" not in html  # the topic filter holds

    article = await client.get("/knowledge/kb-opening-hours-and-contact")
    html = await article.text()
    assert "<h1>Opening hours and how to contact us</h1>" in html
    assert "<strong>Monday to Friday from 08:00 to 16:00</strong>" in html

    danish = await client.get("/knowledge/kb-opening-hours-and-contact",
                              cookies={"portal_lang": "da"})
    html = await danish.text()
    assert "<h1>Åbningstider og kontakt</h1>" in html
    html = await (await client.get("/knowledge?q=brystsmerter", cookies={"portal_lang": "da"})).text()
    assert "Brystsmerter – hvornår er det akut?" in html

    # only knowledge articles: a patient's visit note is not an article
    assert (await client.get("/knowledge/no-such-article")).status == 404
    notes = await gateway.search("DocumentReference", {"subject": "Patient/pat-anna", "_count": "1"})
    assert notes.resources
    assert (await client.get(f"/knowledge/{notes.resources[0]['id']}")).status == 404


async def test_staff_can_read_articles_and_anonymous_users_cannot(client, accounts) -> None:
    assert (await client.get("/knowledge", allow_redirects=False)).status == 303
    email = await make_staff_account(accounts, Role.AGENT)
    await sign_in(client, email)
    assert (await client.get("/knowledge?q=vaccination")).status == 200
    assert (await client.get("/knowledge/kb-childhood-vaccinations")).status == 200


async def test_the_index_follows_articles_published_and_withdrawn_through_fhir(
        client, accounts, app, gateway) -> None:
    email = await make_patient_account(accounts, "pat-bjorn")
    await sign_in(client, email)
    await client.get("/knowledge")  # the library is loaded
    word = f"zorbulation{uuid.uuid4().hex[:6]}"
    article_id = f"kb-itest-{uuid.uuid4().hex[:8]}"
    resource = {
        "resourceType": "DocumentReference", "id": article_id, "status": "current",
        "type": {"coding": [{"system": "http://fhir-portal.example.org/fhir/CodeSystem/document-type",
                             "code": "knowledge-article"}]},
        "category": [{"coding": [{"system": TOPIC_SYSTEM, "code": "lifestyle"}]}],
        "content": [
            {"attachment": {"contentType": "text/markdown", "language": "en",
                            "title": f"All about {word}",
                            "data": _b64(f"Why {word} matters.\n\n[evil](javascript:alert(1))")}},
            {"attachment": {"contentType": "text/markdown", "language": "da",
                            "title": f"Alt om {word}", "data": _b64(f"Derfor er {word} vigtig.")}},
        ],
    }
    created = await gateway.update(resource)
    try:
        await _publish_and_withdraw(client, app, gateway, created, word, article_id)
    finally:
        await gateway.delete("DocumentReference", article_id)  # never leave it on the shared server


async def _publish_and_withdraw(client, app, gateway, created, word, article_id) -> None:  # type: ignore[no-untyped-def]
    library = app[LIBRARY]
    await library.refresh(DirectoryReader(gateway))  # what the 30-second refresher does
    assert article_id in library.articles
    html = await (await client.get(f"/knowledge?q={word}")).text()
    assert f"All about {word}" in html
    page = await (await client.get(f"/knowledge/{article_id}")).text()
    assert "href=\"javascript" not in page and f"Why {word} matters." in page

    await gateway.update({**created, "status": "entered-in-error"})
    await library.refresh(DirectoryReader(gateway))
    assert article_id not in library.articles
    assert f"All about {word}" not in await (await client.get(f"/knowledge?q={word}")).text()
    assert (await client.get(f"/knowledge/{article_id}")).status == 404
