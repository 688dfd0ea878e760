"""The account emails (verification, activation, password reset), in the user's language.

They carry a link and never any health information; they are sent directly with
``notify.email.send_email`` because they are not clinical notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_portal.i18n import N_, Translations
from fhir_portal.notify.email import send_email
from fhir_portal.settings import Settings

_GREETING = N_("Hello,")
_SIGNATURE = N_("Kind regards,\n%(title)s")
_IGNORE = N_("If you did not ask for this, you can ignore this email.")

VERIFY_SUBJECT = N_("Confirm your email address for %(title)s")
VERIFY_BODY = N_(
    "Thank you for registering with %(title)s. Open this link to confirm your email address "
    "and finish creating your account:\n\n%(link)s\n\nThe link works once and expires in "
    "%(hours)s hours."
)
ACTIVATE_SUBJECT = N_("Activate your account at %(title)s")
ACTIVATE_BODY = N_(
    "You are invited to use %(title)s, where you can see your health information, book "
    "appointments and write to your care team.\n\nOpen this link to activate your account:\n\n"
    "%(link)s\n\nOr go to %(activate_url)s and enter the activation code %(code)s together with "
    "this email address.\n\nThe link and the code work once and expire in %(days)s days."
)
RESET_SUBJECT = N_("Reset your password for %(title)s")
RESET_BODY = N_(
    "Someone asked to reset the password of your account at %(title)s. Open this link to "
    "choose a new password:\n\n%(link)s\n\nThe link works once and expires in %(minutes)s "
    "minutes."
)
EXISTS_SUBJECT = N_("You already have an account at %(title)s")
EXISTS_BODY = N_(
    "Someone tried to register a new account with this email address, but you already have "
    "an account. Sign in at %(login_url)s. If you forgot your password, you can choose a new "
    "one at %(reset_url)s."
)


@dataclass(frozen=True)
class AccountEmail:
    subject: str
    text: str


def compose(
    translations: Translations, language: str | None, settings: Settings,
    subject: str, body: str, **values: Any,
) -> AccountEmail:
    catalog = translations.get(language or settings.default_locale)
    values = {"title": settings.title, **values}
    text = "\n\n".join([
        catalog.gettext(_GREETING),
        catalog.gettext(body) % values,
        catalog.gettext(_IGNORE),
        catalog.gettext(_SIGNATURE) % values,
    ])
    return AccountEmail(catalog.gettext(subject) % values, text + "\n")


async def send_account_email(settings: Settings, to: str, message: AccountEmail) -> None:
    await send_email(settings, to=to, subject=message.subject, text=message.text)
