"""The error catalogue: every message that did not go out, and every contact that cannot be messaged,
carries one of these codes. The UI, the API (`GET /api/v1/errors`), the CLI (`casemsg errors`) and
docs/errors.md all show this list; a test keeps docs/errors.md equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: str
    title: str
    description: str
    fix: str
    delay: bool = False  # a delay (the message waits), not a failure


_CATALOGUE = [
    ErrorCode(
        "INVALID_PHONE_NUMBER",
        "Invalid phone number",
        "The contact's phone number is not in international E.164 format: digits only, country code "
        "first, no spaces, dashes or punctuation (for example 15551234567 or 919812345678; a leading '+' "
        "is ignored). The national leading 0 is dropped after the country code, and a number has at most "
        "15 digits.",
        "Correct the contact_phone_number case property (or the mobile worker's number) as the message suggests.",
    ),
    ErrorCode(
        "UNASSIGNED_PHONE_NUMBER",
        "Number in no assigned range",
        "The phone number has a possible length but lies in no range assigned to an operator (for "
        "example the 555 numbers of North America). It is accepted, but may not reach anyone.",
        "Check the number with the person.",
        delay=False,
    ),
    ErrorCode(
        "NO_PHONE_NUMBER",
        "No phone number",
        "The contact has no phone number, so no SMS can be sent to it.",
        "Set the contact_phone_number case property, or add a phone number to the mobile worker.",
    ),
    ErrorCode(
        "NO_TWO_WAY_PHONE_NUMBER",
        "No two-way phone number",
        "Two-way SMS (replies, surveys) needs a verified number: contact_phone_number_is_verified must be 1.",
        "Verify the number (set contact_phone_number_is_verified to 1 after confirming it with the person).",
    ),
    ErrorCode(
        "PHONE_NUMBER_IN_USE",
        "Phone number in use by another contact",
        "Another contact (a case or a mobile worker, possibly in another project) has the same phone "
        "number. Only one contact in the installation can hold a number for two-way SMS: the first verified "
        "one. The others still get one-way SMS, unless their project blocks shared numbers.",
        "Close the other case or remove the number from the mobile worker; ownership then passes to the "
        "next verified contact automatically.",
    ),
    ErrorCode(
        "NO_CONSENT",
        "No recorded consent",
        "This number is in a region that requires recorded opt-in consent (the United States by default) "
        "and the person has not consented. Only the opt-in request may be sent.",
        "Send the opt-in request, or have a frontline worker record verbal consent by setting "
        "contact_phone_number_is_verified to 1.",
    ),
    ErrorCode(
        "PHONE_OPTED_OUT",
        "Phone number opted out",
        "The person texted STOP (or a similar word) from this number; no SMS goes to it from any project.",
        "Only the person can opt back in, by texting START.",
    ),
    ErrorCode(
        "NO_CASE_NAME",
        "Case has no name",
        "The case has no name; SMS surveys need the case name.",
        "Set the case's name.",
    ),
    ErrorCode(
        "NO_EMAIL_ADDRESS",
        "No email address",
        "The contact has no email address, so no email can be sent to it.",
        "Set the commcare_email_address case property (or the mobile worker's email).",
    ),
    ErrorCode(
        "INVALID_EMAIL_ADDRESS",
        "Invalid email address",
        "The contact's email address is not a valid address.",
        "Correct the commcare_email_address case property (or the mobile worker's email).",
    ),
    ErrorCode(
        "INVALID_TIME_ZONE",
        "Invalid time zone",
        "The contact's time_zone is not an IANA time zone name; the project's default time zone is used instead.",
        "Set time_zone to a name such as America/New_York or Africa/Nairobi.",
    ),
    ErrorCode(
        "UNKNOWN_LANGUAGE_CODE",
        "Unknown language code",
        "The contact's language_code is not one of the project's SMS languages; the fallback language is used instead.",
        "Set language_code to one of the project's SMS languages, or add the language to the project.",
    ),
    ErrorCode(
        "NO_MESSAGE_FOR_LANGUAGE",
        "No message for the language",
        "The message has no text in the contact's language, the schedule's default language, the "
        "project's default language, nor untranslated text.",
        "Add a translation for the contact's language or the project's default language.",
    ),
    ErrorCode(
        "CANNOT_RENDER_MESSAGE",
        "Message could not be rendered",
        "The message template is malformed (for example an unclosed '{' or an unknown placeholder form).",
        "Fix the template: placeholders look like {case.name}, {case.some_property}, "
        "{case.parent.some_property} or {recipient.name}.",
    ),
    ErrorCode(
        "GATEWAY_NOT_FOUND",
        "Gateway not found",
        "The contact's contact_backend_id names a gateway that does not exist.",
        "Set contact_backend_id to the name of a configured gateway, or remove it to use the default route.",
    ),
    ErrorCode(
        "NO_SUITABLE_GATEWAY",
        "No suitable gateway",
        "No gateway route matches this phone number (no prefix and no '*' catch-all route).",
        "Add a gateway route: casemsg gateway map PREFIX GATEWAY (use '*' for a catch-all).",
    ),
    ErrorCode(
        "UNSUPPORTED_COUNTRY",
        "Country not supported by the gateway",
        "The chosen gateway does not send to this number's country.",
        "Route this country's prefix to a gateway that supports it.",
    ),
    ErrorCode(
        "CONTACT_IS_INACTIVE",
        "Contact is inactive",
        "The case is closed or deleted, or the mobile worker is inactive; such contacts get no messages.",
        "Reopen the case or reactivate the mobile worker.",
    ),
    ErrorCode(
        "MESSAGE_BLANK",
        "Message is blank",
        "The message text is empty after rendering.",
        "Write some text in the message or its translation.",
    ),
    ErrorCode(
        "MESSAGE_TOO_LONG",
        "Message too long",
        "The message is longer than the gateway accepts (counted in SMS segments).",
        "Shorten the message.",
    ),
    ErrorCode(
        "INVALID_DESTINATION_NUMBER",
        "Gateway rejected the number",
        "The gateway says the destination number is not a valid mobile number.",
        "Check the contact's phone number with the person.",
    ),
    ErrorCode(
        "GATEWAY_ERROR",
        "Gateway error",
        "The gateway refused the message or could not be reached.",
        "Check the gateway's configuration and credentials; see the message's detail for the gateway's answer.",
    ),
    ErrorCode(
        "TOO_MANY_UNSUCCESSFUL_ATTEMPTS",
        "Too many unsuccessful attempts",
        "The gateway failed transiently (timeout, connection error, 5xx or 429) on every attempt.",
        "Check that the gateway is up; the message can be sent again.",
    ),
    ErrorCode(
        "MESSAGE_IS_STALE",
        "Message is stale",
        "The message waited longer than the stale limit (7 days by default) and was not sent, since its "
        "content is probably no longer relevant.",
        "Send a new message if it is still needed.",
    ),
    ErrorCode(
        "RATE_LIMITED",
        "Rate limited",
        "The gateway's rate limit (segments per second) is reached; the message waits for its turn.",
        "Nothing to do: it is a delay. Raise the gateway's rate limit if the provider allows it.",
        delay=True,
    ),
    ErrorCode(
        "QUIET_HOURS",
        "Quiet hours",
        "The message waits until the end of the project's quiet hours in the contact's time zone.",
        "Nothing to do: it is a delay.",
        delay=True,
    ),
    ErrorCode(
        "LOOP_DETECTED",
        "Loop detected",
        "The same text was sent to this contact too many times in a short window, which looks like a "
        "loop (for example two systems answering each other).",
        "Check the keyword, alert or integration that sends this message.",
    ),
    ErrorCode(
        "EMAIL_GATEWAY_ERROR",
        "Email gateway error",
        "The SMTP server refused the email or could not be reached.",
        "Check CASEMSG_EMAIL_URL and the SMTP server.",
    ),
    ErrorCode(
        "SURVEY_EXPIRED",
        "Survey expired",
        "The survey session ended before the person answered.",
        "Start the survey again if needed.",
    ),
    ErrorCode(
        "SENDING_OUTCOME_UNKNOWN",
        "Sending outcome unknown",
        "A worker stopped while handing the message to the gateway, so whether it went out is unknown; it "
        "was not sent again to avoid a duplicate.",
        "Check the gateway's own log; send again if the person did not receive it.",
    ),
]

CATALOGUE: dict[str, ErrorCode] = {e.code: e for e in _CATALOGUE}


def get(code: str) -> ErrorCode:
    return CATALOGUE[code]


def as_dict(code: str, fix: str | None = None, detail: str | None = None) -> dict:
    """An error as shown in the API: the catalogue's words, with the fix made specific when known."""
    e = CATALOGUE[code]
    out = {"code": e.code, "title": e.title, "description": e.description, "fix": fix or e.fix}
    if detail:
        out["detail"] = detail
    return out


def catalogue_markdown() -> str:
    """docs/errors.md, generated from the catalogue (a test keeps the file equal to this)."""
    lines = [
        "# Error codes",
        "",
        "Every message that did not go out, and every contact that cannot be messaged, carries one of",
        "these codes. The same list is served at `GET /api/v1/errors` and printed by `casemsg errors`.",
        "Codes marked *(delay)* mean the message waits; they are not failures.",
        "",
    ]
    for e in _CATALOGUE:
        lines += [
            f"## `{e.code}`{' *(delay)*' if e.delay else ''}",
            "",
            f"**{e.title}.** {e.description}",
            "",
            f"*How to fix:* {e.fix}",
            "",
        ]
    return "\n".join(lines)


# --- bad input (API, CLI, importer) --------------------------------------------------------------
class InputError(Exception):
    def __init__(self, code: str, message: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
