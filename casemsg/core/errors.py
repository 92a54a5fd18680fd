"""The error catalogue: every code casemsg can answer with is here, in one of two kinds.

- *problems* (`kind="problem"`): every message that did not go out, and every contact that cannot be
  messaged, carries one of these codes;
- *request errors* (`kind="request"`): a call to the API or the CLI that is refused (bad input, an
  unknown id, a missing key) answers `{"error": {"code": …, "message": …}}` with one of these codes and
  the entry's HTTP status.

Some problem codes are also request errors (an opt-in request to an opted-out number answers
`PHONE_OPTED_OUT`, 409): their entry keeps kind "problem" and gives the HTTP status too.

Every code has a module-level constant of the same name (`errors.CASE_NOT_FOUND`); code that produces
a code uses the constant, never a bare string, and a test scans the tree to keep it so. The UI (`/errors/`),
the API (`GET /api/v1/errors`), the CLI (`casemsg errors`) and docs/errors.md (`make errors-doc`) all
show this list; a test keeps docs/errors.md equal to `catalogue_markdown()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

Kind = Literal["problem", "request"]

# --- the codes ------------------------------------------------------------------------------------
# Problems: on messages and contacts.
INVALID_PHONE_NUMBER: Final = "INVALID_PHONE_NUMBER"
UNASSIGNED_PHONE_NUMBER: Final = "UNASSIGNED_PHONE_NUMBER"
NO_PHONE_NUMBER: Final = "NO_PHONE_NUMBER"
NO_TWO_WAY_PHONE_NUMBER: Final = "NO_TWO_WAY_PHONE_NUMBER"
PHONE_NUMBER_IN_USE: Final = "PHONE_NUMBER_IN_USE"
NO_CONSENT: Final = "NO_CONSENT"
PHONE_OPTED_OUT: Final = "PHONE_OPTED_OUT"
NO_CASE_NAME: Final = "NO_CASE_NAME"
NO_EMAIL_ADDRESS: Final = "NO_EMAIL_ADDRESS"
INVALID_EMAIL_ADDRESS: Final = "INVALID_EMAIL_ADDRESS"
INVALID_TIME_ZONE: Final = "INVALID_TIME_ZONE"
UNKNOWN_LANGUAGE_CODE: Final = "UNKNOWN_LANGUAGE_CODE"
NO_MESSAGE_FOR_LANGUAGE: Final = "NO_MESSAGE_FOR_LANGUAGE"
CANNOT_RENDER_MESSAGE: Final = "CANNOT_RENDER_MESSAGE"
GATEWAY_NOT_FOUND: Final = "GATEWAY_NOT_FOUND"
NO_SUITABLE_GATEWAY: Final = "NO_SUITABLE_GATEWAY"
UNSUPPORTED_COUNTRY: Final = "UNSUPPORTED_COUNTRY"
CONTACT_IS_INACTIVE: Final = "CONTACT_IS_INACTIVE"
MESSAGE_BLANK: Final = "MESSAGE_BLANK"
MESSAGE_TOO_LONG: Final = "MESSAGE_TOO_LONG"
INVALID_DESTINATION_NUMBER: Final = "INVALID_DESTINATION_NUMBER"
GATEWAY_ERROR: Final = "GATEWAY_ERROR"
TOO_MANY_UNSUCCESSFUL_ATTEMPTS: Final = "TOO_MANY_UNSUCCESSFUL_ATTEMPTS"
MESSAGE_IS_STALE: Final = "MESSAGE_IS_STALE"
RATE_LIMITED: Final = "RATE_LIMITED"
QUIET_HOURS: Final = "QUIET_HOURS"
LOOP_DETECTED: Final = "LOOP_DETECTED"
EMAIL_GATEWAY_ERROR: Final = "EMAIL_GATEWAY_ERROR"
SURVEY_EXPIRED: Final = "SURVEY_EXPIRED"
SENDING_OUTCOME_UNKNOWN: Final = "SENDING_OUTCOME_UNKNOWN"
GATEWAY_FAILOVER: Final = "GATEWAY_FAILOVER"
GATEWAY_CIRCUIT_OPEN: Final = "GATEWAY_CIRCUIT_OPEN"
GATEWAY_URL_NOT_ALLOWED: Final = "GATEWAY_URL_NOT_ALLOWED"
INVALID_SENDER: Final = "INVALID_SENDER"
# WhatsApp (docs/whatsapp.md).
WHATSAPP_WINDOW_CLOSED: Final = "WHATSAPP_WINDOW_CLOSED"
WHATSAPP_TEMPLATE_NOT_APPROVED: Final = "WHATSAPP_TEMPLATE_NOT_APPROVED"
WHATSAPP_NOT_ON_WHATSAPP: Final = "WHATSAPP_NOT_ON_WHATSAPP"
WHATSAPP_SENT_AS_SMS: Final = "WHATSAPP_SENT_AS_SMS"
WHATSAPP_TEMPLATE_SYNC_FAILED: Final = "WHATSAPP_TEMPLATE_SYNC_FAILED"

# Request errors: API and CLI input.
UNAUTHENTICATED: Final = "UNAUTHENTICATED"
FORBIDDEN: Final = "FORBIDDEN"
HTTP_ERROR: Final = "HTTP_ERROR"
VALIDATION_ERROR: Final = "VALIDATION_ERROR"
INVALID_VALUE: Final = "INVALID_VALUE"
VALUE_TOO_LONG: Final = "VALUE_TOO_LONG"
INVALID_SLUG: Final = "INVALID_SLUG"
PROJECT_EXISTS: Final = "PROJECT_EXISTS"
SANDBOX_DISABLED: Final = "SANDBOX_DISABLED"
NOT_A_PROJECT_NUMBER: Final = "NOT_A_PROJECT_NUMBER"
NUMBER_IN_ANOTHER_SURVEY: Final = "NUMBER_IN_ANOTHER_SURVEY"
KEY_NOT_FOUND: Final = "KEY_NOT_FOUND"
INSUFFICIENT_SCOPE: Final = "INSUFFICIENT_SCOPE"
INVALID_SCOPE: Final = "INVALID_SCOPE"
WEAKENS_LEGAL_RULE: Final = "WEAKENS_LEGAL_RULE"
USER_NOT_FOUND: Final = "USER_NOT_FOUND"
INVALID_ROLE: Final = "INVALID_ROLE"
LAST_OWNER: Final = "LAST_OWNER"
INVITATION_NOT_FOUND: Final = "INVITATION_NOT_FOUND"
INVITATION_USED: Final = "INVITATION_USED"
INVITATION_EXPIRED: Final = "INVITATION_EXPIRED"
WEBHOOK_NOT_FOUND: Final = "WEBHOOK_NOT_FOUND"
WEBHOOK_URL_NOT_ALLOWED: Final = "WEBHOOK_URL_NOT_ALLOWED"
UNKNOWN_EVENT: Final = "UNKNOWN_EVENT"
NOT_FOUND: Final = "NOT_FOUND"
METHOD_NOT_ALLOWED: Final = "METHOD_NOT_ALLOWED"
IDEMPOTENCY_KEY_IN_USE: Final = "IDEMPOTENCY_KEY_IN_USE"
CASE_NOT_FOUND: Final = "CASE_NOT_FOUND"
CASE_TYPE_REQUIRED: Final = "CASE_TYPE_REQUIRED"
INVALID_CASE_ID: Final = "INVALID_CASE_ID"
INVALID_PROPERTY: Final = "INVALID_PROPERTY"
CASE_EXISTS: Final = "CASE_EXISTS"
DUPLICATE_CASE_ID: Final = "DUPLICATE_CASE_ID"
TOO_MANY_CASES: Final = "TOO_MANY_CASES"
MOBILE_WORKER_NOT_FOUND: Final = "MOBILE_WORKER_NOT_FOUND"
USERNAME_REQUIRED: Final = "USERNAME_REQUIRED"
USERNAME_TAKEN: Final = "USERNAME_TAKEN"
MESSAGE_NOT_FOUND: Final = "MESSAGE_NOT_FOUND"
CONSENT_ALREADY_RECORDED: Final = "CONSENT_ALREADY_RECORDED"
KEYWORD_NOT_FOUND: Final = "KEYWORD_NOT_FOUND"
KEYWORD_EXISTS: Final = "KEYWORD_EXISTS"
RESERVED_KEYWORD: Final = "RESERVED_KEYWORD"
TEXT_NOT_FOUND: Final = "TEXT_NOT_FOUND"
TEXT_REQUIRED: Final = "TEXT_REQUIRED"
INVALID_TRANSLATIONS_FILE: Final = "INVALID_TRANSLATIONS_FILE"
INVALID_GATEWAY_NAME: Final = "INVALID_GATEWAY_NAME"
UNKNOWN_GATEWAY_TYPE: Final = "UNKNOWN_GATEWAY_TYPE"
INVALID_GATEWAY_CONFIG: Final = "INVALID_GATEWAY_CONFIG"
GATEWAY_EXISTS: Final = "GATEWAY_EXISTS"
GATEWAY_IN_USE: Final = "GATEWAY_IN_USE"
ROUTE_NOT_FOUND: Final = "ROUTE_NOT_FOUND"
INVALID_PREFIX: Final = "INVALID_PREFIX"
INVALID_WEBHOOK: Final = "INVALID_WEBHOOK"
INBOUND_NOT_SUPPORTED: Final = "INBOUND_NOT_SUPPORTED"
STATUS_NOT_SUPPORTED: Final = "STATUS_NOT_SUPPORTED"
SURVEY_NOT_FOUND: Final = "SURVEY_NOT_FOUND"
INVALID_SURVEY: Final = "INVALID_SURVEY"
UNKNOWN_CASE_TYPE: Final = "UNKNOWN_CASE_TYPE"
INVALID_CRITERION: Final = "INVALID_CRITERION"
UNKNOWN_OPERATOR: Final = "UNKNOWN_OPERATOR"
INVALID_REGEX: Final = "INVALID_REGEX"
SCHEDULE_ENDED: Final = "SCHEDULE_ENDED"
BROADCAST_NOT_FOUND: Final = "BROADCAST_NOT_FOUND"
ALERT_NOT_FOUND: Final = "ALERT_NOT_FOUND"
BROADCAST_CANCELLED: Final = "BROADCAST_CANCELLED"
# Groups of cases (docs/groups.md).
GROUP_NOT_FOUND: Final = "GROUP_NOT_FOUND"
GROUP_EXISTS: Final = "GROUP_EXISTS"
GROUP_IN_USE: Final = "GROUP_IN_USE"
GROUP_IS_DYNAMIC: Final = "GROUP_IS_DYNAMIC"
INVALID_CONDITION: Final = "INVALID_CONDITION"
# Bounded work for uploads and bodies (docs/security.md).
FILE_TOO_LARGE: Final = "FILE_TOO_LARGE"
REQUEST_TOO_LARGE: Final = "REQUEST_TOO_LARGE"
TOO_MANY_ROWS: Final = "TOO_MANY_ROWS"
TOO_MANY_QUESTIONS: Final = "TOO_MANY_QUESTIONS"
# Case sources (docs/sources.md).
SOURCE_NOT_FOUND: Final = "SOURCE_NOT_FOUND"
SOURCE_RUN_NOT_FOUND: Final = "SOURCE_RUN_NOT_FOUND"
SOURCE_EXISTS: Final = "SOURCE_EXISTS"
UNKNOWN_SOURCE_TYPE: Final = "UNKNOWN_SOURCE_TYPE"
INVALID_SOURCE_CONFIG: Final = "INVALID_SOURCE_CONFIG"
INVALID_MAPPING: Final = "INVALID_MAPPING"
SOURCE_URL_NOT_ALLOWED: Final = "SOURCE_URL_NOT_ALLOWED"
SOURCE_AUTH_FAILED: Final = "SOURCE_AUTH_FAILED"
SOURCE_REQUEST_REFUSED: Final = "SOURCE_REQUEST_REFUSED"
SOURCE_UNAVAILABLE: Final = "SOURCE_UNAVAILABLE"
SOURCE_BAD_ANSWER: Final = "SOURCE_BAD_ANSWER"
UNMAPPABLE_VALUE: Final = "UNMAPPABLE_VALUE"
INVALID_CASE_EXPORT: Final = "INVALID_CASE_EXPORT"


@dataclass(frozen=True)
class ErrorCode:
    code: str
    title: str
    description: str
    fix: str
    delay: bool = False  # a delay (the message waits), not a failure
    kind: Kind = "problem"  # "problem": on messages and contacts; "request": a refused API/CLI call
    status: int | None = None  # the HTTP status the API answers with when a request is refused for it


_CATALOGUE = [
    # --- problems: on messages and contacts -------------------------------------------------------
    ErrorCode(
        INVALID_PHONE_NUMBER,
        "Invalid phone number",
        "The contact's phone number is not in international E.164 format: digits only, country code "
        "first, no spaces, dashes or punctuation (for example 15551234567 or 919812345678; a leading '+' "
        "is ignored). The national leading 0 is dropped after the country code, and a number has at most "
        "15 digits.",
        "Correct the contact_phone_number case property (or the mobile worker's number) as the message suggests.",
        status=422,
    ),
    ErrorCode(
        UNASSIGNED_PHONE_NUMBER,
        "Number in no assigned range",
        "The phone number has a possible length but lies in no range assigned to an operator (for "
        "example the 555 numbers of North America). It is accepted, but may not reach anyone.",
        "Check the number with the person.",
        delay=False,
    ),
    ErrorCode(
        NO_PHONE_NUMBER,
        "No phone number",
        "The contact has no phone number, so no SMS can be sent to it.",
        "Set the contact_phone_number case property, or add a phone number to the mobile worker.",
        status=422,
    ),
    ErrorCode(
        NO_TWO_WAY_PHONE_NUMBER,
        "No two-way phone number",
        "Two-way SMS (replies, surveys) needs a verified number: contact_phone_number_is_verified must be 1.",
        "Verify the number (set contact_phone_number_is_verified to 1 after confirming it with the person).",
        status=422,
    ),
    ErrorCode(
        PHONE_NUMBER_IN_USE,
        "Phone number in use by another contact",
        "Another contact (a case or a mobile worker, possibly in another project) has the same phone "
        "number. Only one contact in the installation can hold a number for two-way SMS: the first verified "
        "one. The others still get one-way SMS, unless their project blocks shared numbers.",
        "Close the other case or remove the number from the mobile worker; ownership then passes to the "
        "next verified contact automatically.",
    ),
    ErrorCode(
        NO_CONSENT,
        "No recorded consent",
        "This number is in a region that requires recorded opt-in consent (the United States by default) "
        "and the person has not consented. Only the opt-in request may be sent.",
        "Send the opt-in request, or have a frontline worker record verbal consent by setting "
        "contact_phone_number_is_verified to 1.",
    ),
    ErrorCode(
        PHONE_OPTED_OUT,
        "Phone number opted out",
        "The person texted STOP (or a similar word) from this number; no SMS goes to it from any project.",
        "Only the person can opt back in, by texting START.",
        status=409,
    ),
    ErrorCode(
        NO_CASE_NAME,
        "Case has no name",
        "The case has no name; SMS surveys need the case name.",
        "Set the case's name.",
        status=422,
    ),
    ErrorCode(
        NO_EMAIL_ADDRESS,
        "No email address",
        "The contact has no email address, so no email can be sent to it.",
        "Set the commcare_email_address case property (or the mobile worker's email).",
    ),
    ErrorCode(
        INVALID_EMAIL_ADDRESS,
        "Invalid email address",
        "The contact's email address is not a valid address.",
        "Correct the commcare_email_address case property (or the mobile worker's email).",
    ),
    ErrorCode(
        INVALID_TIME_ZONE,
        "Invalid time zone",
        "The contact's time_zone is not an IANA time zone name; the project's default time zone is used instead.",
        "Set time_zone to a name such as America/New_York or Africa/Nairobi.",
        status=422,
    ),
    ErrorCode(
        UNKNOWN_LANGUAGE_CODE,
        "Unknown language code",
        "The contact's language_code is not one of the project's SMS languages; the fallback language is used "
        "instead. A broadcast or alert whose translations or default_language name such a language is refused "
        "with this code.",
        "Set language_code to one of the project's SMS languages, or add the language to the project.",
        status=422,
    ),
    ErrorCode(
        NO_MESSAGE_FOR_LANGUAGE,
        "No message for the language",
        "The message has no text in the contact's language, the schedule's default language, the "
        "project's default language, nor untranslated text.",
        "Add a translation for the contact's language or the project's default language.",
    ),
    ErrorCode(
        CANNOT_RENDER_MESSAGE,
        "Message could not be rendered",
        "The message template is malformed (for example an unclosed '{' or an unknown placeholder form).",
        "Fix the template: placeholders look like {case.name}, {case.some_property}, "
        "{case.parent.some_property} or {recipient.name}.",
        status=422,
    ),
    ErrorCode(
        GATEWAY_NOT_FOUND,
        "Gateway not found",
        "The contact's contact_backend_id names a gateway that does not exist.",
        "Set contact_backend_id to the name of a configured gateway, or remove it to use the default route.",
        status=404,
    ),
    ErrorCode(
        NO_SUITABLE_GATEWAY,
        "No suitable gateway",
        "No gateway route matches this phone number (no prefix and no '*' catch-all route).",
        "Add a gateway route: casemsg gateway map PREFIX GATEWAY (use '*' for a catch-all).",
    ),
    ErrorCode(
        UNSUPPORTED_COUNTRY,
        "Country not supported by the gateway",
        "The chosen gateway does not send to this number's country.",
        "Route this country's prefix to a gateway that supports it.",
    ),
    ErrorCode(
        CONTACT_IS_INACTIVE,
        "Contact is inactive",
        "The case is closed or deleted, or the mobile worker is inactive; such contacts get no messages.",
        "Reopen the case or reactivate the mobile worker.",
        status=422,
    ),
    ErrorCode(
        MESSAGE_BLANK,
        "Message is blank",
        "The message text is empty after rendering.",
        "Write some text in the message or its translation.",
        status=422,
    ),
    ErrorCode(
        MESSAGE_TOO_LONG,
        "Message too long",
        "The message is longer than the gateway accepts (counted in SMS segments).",
        "Shorten the message.",
    ),
    ErrorCode(
        INVALID_DESTINATION_NUMBER,
        "Gateway rejected the number",
        "The gateway says the destination number is not a valid mobile number.",
        "Check the contact's phone number with the person.",
    ),
    ErrorCode(
        GATEWAY_ERROR,
        "Gateway error",
        "The gateway refused the message or could not be reached.",
        "Check the gateway's configuration and credentials; see the message's detail for the gateway's answer.",
    ),
    ErrorCode(
        TOO_MANY_UNSUCCESSFUL_ATTEMPTS,
        "Too many unsuccessful attempts",
        "The gateway failed transiently (timeout, connection error, 5xx or 429) on every attempt.",
        "Check that the gateway is up; the message can be sent again.",
    ),
    ErrorCode(
        MESSAGE_IS_STALE,
        "Message is stale",
        "The message waited longer than the stale limit (7 days by default) and was not sent, since its "
        "content is probably no longer relevant.",
        "Send a new message if it is still needed.",
    ),
    ErrorCode(
        RATE_LIMITED,
        "Rate limited",
        "The gateway's rate limit (segments per second) is reached; the message waits for its turn.",
        "Nothing to do: it is a delay. Raise the gateway's rate limit if the provider allows it.",
        delay=True,
        status=429,
    ),
    ErrorCode(
        QUIET_HOURS,
        "Quiet hours",
        "The message waits until the end of the project's quiet hours in the contact's time zone.",
        "Nothing to do: it is a delay.",
        delay=True,
    ),
    ErrorCode(
        LOOP_DETECTED,
        "Loop detected",
        "The same text was sent to this contact too many times in a short window, which looks like a "
        "loop (for example two systems answering each other).",
        "Check the keyword, alert or integration that sends this message.",
    ),
    ErrorCode(
        EMAIL_GATEWAY_ERROR,
        "Email gateway error",
        "The SMTP server refused the email or could not be reached.",
        "Check CASEMSG_EMAIL_URL and the SMTP server.",
    ),
    ErrorCode(
        SURVEY_EXPIRED,
        "Survey expired",
        "The survey session ended before the person answered.",
        "Start the survey again if needed.",
    ),
    ErrorCode(
        SENDING_OUTCOME_UNKNOWN,
        "Sending outcome unknown",
        "A worker stopped while handing the message to the gateway, so whether it went out is unknown; it "
        "was not sent again to avoid a duplicate.",
        "Check the gateway's own log; send again if the person did not receive it.",
    ),
    ErrorCode(
        GATEWAY_FAILOVER,
        "Moved to the route's next gateway",
        "The gateway certainly did not take the message (it was not bound, refused the bind or the "
        "credentials, is disabled, or its circuit is open after consecutive such failures), so the message "
        "moved to the next gateway of its route. The message's history names both gateways and why. A message "
        "whose outcome is unknown (no answer after it was handed over) never moves: it could be sent twice.",
        "Nothing to do for the message. Check the first gateway (casemsg gateway list shows its circuit).",
        delay=True,
    ),
    ErrorCode(
        GATEWAY_CIRCUIT_OPEN,
        "Every gateway of the route is unavailable",
        "Each gateway of the message's route failed several sends in a row in a way that means it took "
        "nothing (bind refused, wrong credentials, disabled), so its circuit is open. The message waits until "
        "one is probed again and takes messages.",
        "Check the gateways' credentials and the operator's status; enable a disabled gateway.",
        delay=True,
    ),
    ErrorCode(
        GATEWAY_URL_NOT_ALLOWED,
        "Gateway URL not allowed",
        "The gateway's URL (the http type's url, or a base_url) reaches a loopback, private-network, "
        "link-local or cloud metadata address, directly, once its name is resolved, or through a redirect. "
        "casemsg does not send to internal addresses unless the installation sets "
        "CASEMSG_GATEWAY_ALLOW_PRIVATE=1, and never to cloud metadata addresses. The message names the host, "
        "the address and why. A gateway is refused when it is added; a message fails (it is not retried) when "
        "the address is found at send time.",
        "Point the gateway at the provider's public address. An installation whose gateway really is on its "
        "own network sets CASEMSG_GATEWAY_ALLOW_PRIVATE=1.",
        status=422,
    ),
    ErrorCode(
        INVALID_SENDER,
        "Inbound message from an unusable sender",
        "A gateway delivered a message whose sender is not a phone number: missing, letters only (an "
        "alphanumeric sender ID) or longer than 15 digits. The message is stored as received, with what the "
        "provider sent, but no contact or keyword is looked up and nothing is replied.",
        "Nothing to answer. If every message from a gateway shows this, check the sender field of its "
        "webhook (for an http gateway, the 'from' field of its inbound config).",
    ),
    ErrorCode(
        WHATSAPP_WINDOW_CLOSED,
        "WhatsApp window closed",
        "WhatsApp lets a business send free text only within 24 hours of the person's last message to it. "
        "The window was closed and the message names no approved template (or WhatsApp itself answered "
        "131047 / Twilio 63016).",
        "Name an approved template in the message's content (it goes outside the window), allow the fallback "
        "to SMS, or wait for the person to write.",
    ),
    ErrorCode(
        WHATSAPP_TEMPLATE_NOT_APPROVED,
        "WhatsApp template not approved",
        "The message names a template that is not among the gateway's approved templates in that language "
        "(not synced, pending, rejected or paused; WhatsApp answered 132001).",
        "Sync the templates (POST …/whatsapp-templates/sync) and name an APPROVED one; templates are edited "
        "at the provider, never here.",
    ),
    ErrorCode(
        WHATSAPP_NOT_ON_WHATSAPP,
        "Not on WhatsApp",
        "WhatsApp could not deliver to the number: it has no WhatsApp account, or it cannot receive this "
        "message (WhatsApp 131026).",
        "Reach the person by SMS (allow the fallback), or check the contact_whatsapp_number case property.",
    ),
    ErrorCode(
        WHATSAPP_SENT_AS_SMS,
        "Sent as SMS instead of WhatsApp",
        "Not a failure: the WhatsApp message could not go (window closed, no approved template, no WhatsApp "
        "gateway) and its content allowed the fallback, so it went as an SMS. The message's history says why.",
        "Nothing to do; name an approved template to reach the person on WhatsApp outside the window.",
    ),
    ErrorCode(
        BROADCAST_CANCELLED,
        "Broadcast cancelled",
        "The broadcast this message belongs to was cancelled while the message was still queued (not yet "
        "handed to a gateway), so it was not sent.",
        "Nothing to fix if the cancellation was meant; otherwise create a new broadcast.",
    ),
    # --- request errors: API and CLI input ----------------------------------------------------------
    ErrorCode(
        UNAUTHENTICATED,
        "Missing or invalid API key",
        "The call has no Authorization header, or its key is unknown or revoked. Every API call except "
        "GET /api/v1/errors and the gateway webhooks needs a project API key.",
        "Send the header 'Authorization: Bearer KEY' with a current key of the project; `casemsg project key "
        "SLUG --new` issues a new one (keys are stored hashed: an issued key is never shown again).",
        kind="request",
        status=401,
    ),
    ErrorCode(
        FORBIDDEN,
        "Not allowed",
        "The API key belongs to another project than the one in the URL (a key reaches only its own "
        "project), or a gateway webhook came with an unknown gateway name, a wrong key in its URL, or a "
        "provider signature that does not match.",
        "Use the key of the project named in the URL. For webhooks, give the provider the exact inbound and "
        "status callback URLs that `casemsg gateway list` prints, and check the gateway's auth token.",
        kind="request",
        status=403,
    ),
    ErrorCode(
        HTTP_ERROR,
        "Malformed request",
        "The request could not be read at all, for example a body that is not valid JSON.",
        "Send a JSON body with the header 'Content-Type: application/json'.",
        kind="request",
        status=400,
    ),
    ErrorCode(
        VALIDATION_ERROR,
        "Invalid request",
        "A field of the request is missing, has the wrong type, or has a value outside what is allowed (for "
        "example a limit outside 1–1,000, an unknown status or channel, a message recipient with both or "
        "neither of case_id and mobile_worker_id, or a keyword without the fields its action needs). The "
        "error's message names each field and what is wrong with it.",
        "Correct the named fields; the API reference at /api/docs lists every field, its type and its limits.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_VALUE,
        "Invalid value",
        "A value (or the URL) contains a NUL character, which cannot be stored.",
        "Remove the NUL (\\x00) characters; they usually come from binary data or a damaged export.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        VALUE_TOO_LONG,
        "Value too long",
        "A field is longer than it may be (for example a case_id, case_type or owner_id over 64 characters, "
        "or a name over 255). The error's message names the field and its limit.",
        "Shorten the value to the limit the message gives.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_SLUG,
        "Invalid project slug",
        "A project's slug is the short name used in URLs: lowercase letters, digits and dashes only.",
        "Choose a slug such as 'maternal-health' or 'district-7'.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        PROJECT_EXISTS,
        "Project already exists",
        "A project with this slug already exists in the installation.",
        "Choose another slug, or use `casemsg project key SLUG --new` to get a key for the existing project.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        SANDBOX_DISABLED,
        "Sandbox switched off",
        "This installation runs with the sandbox gateway switched off (CASEMSG_SANDBOX=0), as a production "
        "installation should: simulated inbound messages are not accepted.",
        "Use a test installation (the sandbox is on in `make run`), or text from a real phone through a real gateway.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        NOT_A_PROJECT_NUMBER,
        "Not a number of this project's contacts",
        "The sandbox simulates replies only from numbers that the calling project's own contacts hold and "
        "that the sandbox gateway serves for the project. Any other number belongs to someone else: a "
        "simulated STOP, START or Yes from it would change another project's contact.",
        "Pick the number of one of this project's cases or mobile workers, and route it through the sandbox "
        "(`casemsg gateway map`).",
        kind="request",
        status=403,
    ),
    ErrorCode(
        NUMBER_IN_ANOTHER_SURVEY,
        "The number is in another project's survey",
        "The phone number is answering an SMS survey of another project through the same gateway, and a "
        "number has one open survey per gateway. A project never ends another project's survey, so this one "
        "was not started.",
        "Wait until the other survey ends or expires, or route this project's numbers through a gateway of its own.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        IDEMPOTENCY_KEY_IN_USE,
        "Idempotency key already used",
        "A message request came with an Idempotency-Key that an earlier request of the last 24 hours used "
        "with a different body, or that a request still being handled holds. Nothing was sent.",
        "Retry with exactly the same body to get the first request's message back, or use a new key for a new message.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        NOT_FOUND,
        "No such endpoint",
        "The URL names no endpoint of the API (a typo in the path, or an older API version).",
        "Check the path against the API reference at /api/docs.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        METHOD_NOT_ALLOWED,
        "Method not allowed",
        "The endpoint exists but does not take this HTTP method (for example a PUT where PATCH is expected).",
        "Use one of the methods the response's Allow header lists; the API reference at /api/docs shows each.",
        kind="request",
        status=405,
    ),
    ErrorCode(
        KEY_NOT_FOUND,
        "API key not found",
        "The project has no API key with this id.",
        "Check the id; list the project's keys with GET /api/v1/projects/{project}/keys.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        INSUFFICIENT_SCOPE,
        "The API key lacks a scope",
        "Each API key has scopes: read (every GET), send (messages, opt-in requests, verification codes, "
        "survey starts, broadcasts and alerts), write (creating, changing and deleting cases, mobile workers, "
        "keywords, surveys, gateways, routes, event webhooks and settings) and admin (API keys, the audit "
        "log, and settings changes that weaken a legal rule). This operation needs a scope the key does not "
        "have.",
        "Use a key with that scope, or have an owner issue one: `casemsg project key SLUG --new --scope read "
        "--scope write`, the API keys page, or POST /api/v1/projects/{project}/keys with a key that has the "
        "admin scope.",
        kind="request",
        status=403,
    ),
    ErrorCode(
        INVALID_SCOPE,
        "Unknown API key scope",
        "An API key's scopes are among read, send, write and admin, and a key has at least one.",
        "Give one or more of read, send, write and admin.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        WEAKENS_LEGAL_RULE,
        "The change weakens a legal rule",
        "The settings change would weaken a rule that keeps messaging lawful: it removes consent regions, "
        "switches quiet hours off or narrows them, removes opt-out words or adds opt-in words, or switches "
        "block_shared_numbers off. Such a change needs the owner role on the pages, or an API key with the "
        "admin scope; every settings change is written to the project's audit log.",
        "Ask an owner of the project to make the change, or use an API key with the admin scope.",
        kind="request",
        status=403,
    ),
    ErrorCode(
        USER_NOT_FOUND,
        "User not found",
        "No user account has this username or email address, so it cannot be made a project member.",
        "Check the spelling, or create the account first: `casemsg users add USERNAME --project P --role R`.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        INVALID_ROLE,
        "Unknown project role",
        "A project member's role is one of owner (settings, gateways, API keys, members), editor (cases, "
        "mobile workers, keywords, sending) or viewer (read only).",
        "Use owner, editor or viewer.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        LAST_OWNER,
        "Last owner of the project",
        "The change would leave the project without an owner, and then nobody could manage its members, "
        "settings, gateways or API keys.",
        "Make another member owner first, then change or remove this one.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        INVITATION_NOT_FOUND,
        "No such invitation",
        "The invitation link is not one casemsg made: it was mistyped, cut short, or withdrawn.",
        "Open the link exactly as it was sent, or ask the project's owner for a new invitation.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        INVITATION_USED,
        "Invitation already used",
        "An invitation link works once: this one has already been used to set a password and join the project.",
        "Log in with the account made then (forgot the password? use 'Forgot your password?' on the login "
        "page), or ask the project's owner for a new invitation.",
        kind="request",
        status=410,
    ),
    ErrorCode(
        INVITATION_EXPIRED,
        "Invitation expired",
        "An invitation link works for a limited time (7 days), and this one's time has passed.",
        "Ask the project's owner for a new invitation (Members → Invite by email).",
        kind="request",
        status=410,
    ),
    ErrorCode(
        WEBHOOK_NOT_FOUND,
        "Event webhook not found",
        "No event webhook endpoint of this project has this id (it may have been deleted).",
        "List the project's endpoints with GET /api/v1/projects/{project}/webhooks.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        WEBHOOK_URL_NOT_ALLOWED,
        "Event webhook URL not allowed",
        "The event webhook URL is not an http:// or https:// URL casemsg may send to: it reaches a loopback, "
        "private-network, link-local or cloud metadata address (directly or once its name is resolved), its "
        "host does not resolve, or it carries a user name or password. The same rules as for gateway URLs; "
        "checked when the endpoint is saved and again at every delivery.",
        "Use the public address of your system's receiver. An installation whose receiver really is on its own "
        "network sets CASEMSG_GATEWAY_ALLOW_PRIVATE=1.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        WHATSAPP_TEMPLATE_SYNC_FAILED,
        "WhatsApp templates could not be synced",
        "The provider refused or did not answer the template list (wrong token or account id, or the provider "
        "is unreachable). The templates synced before are kept.",
        "Check the gateway's access_token and waba_id (Meta) or account_sid and auth_token (Twilio), then sync again.",
        kind="request",
        status=424,
    ),
    ErrorCode(
        UNKNOWN_EVENT,
        "Unknown event",
        "An event webhook subscribes to one or more of message.status, message.inbound, consent.changed, "
        "optout.changed and source.run; the list named none or another one.",
        "Choose events among message.status, message.inbound, consent.changed, optout.changed and source.run.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        CASE_NOT_FOUND,
        "Case not found",
        "The project has no case with this case_id (it may have been deleted, or belong to another project).",
        "Check the case_id; list the project's cases with GET /api/v1/projects/{project}/cases.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        CASE_TYPE_REQUIRED,
        "Case type required",
        "A new case needs a case_type (for example 'mother' or 'patient').",
        "Give case_type when creating a case.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_CASE_ID,
        "Invalid case_id",
        "The case_id is blank.",
        "Give a case_id with some text, or leave case_id out to have one generated.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_PROPERTY,
        "Invalid case property",
        "A case property's name is blank, longer than 255 characters or contains a NUL character, or its "
        "value is not a string, number, true/false or null (lists and objects are refused) or contains a NUL "
        "character.",
        "Send properties as a flat object of names to strings or numbers; null removes a property.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        CASE_EXISTS,
        "Case already exists",
        "A call that creates cases gave a case_id the project already has.",
        "Update the existing case (PATCH, or the bulk call, which creates or updates), or choose another case_id.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        DUPLICATE_CASE_ID,
        "Duplicate case_id in one call",
        "The same case_id appears more than once in one bulk call or import.",
        "Merge the changes to each case into one item.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        TOO_MANY_CASES,
        "Too many cases in one call",
        "A bulk call or import batch carries more than 1,000 cases.",
        "Split the cases into calls of at most 1,000.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        MOBILE_WORKER_NOT_FOUND,
        "Mobile worker not found",
        "The project has no mobile worker with this id.",
        "Check the id; list the project's mobile workers with GET /api/v1/projects/{project}/mobile-workers.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        USERNAME_REQUIRED,
        "Username required",
        "A mobile worker needs a username.",
        "Give the mobile worker a username.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        USERNAME_TAKEN,
        "Username taken",
        "The project already has a mobile worker with this username.",
        "Choose another username, or update the existing mobile worker.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        MESSAGE_NOT_FOUND,
        "Message not found",
        "The project has no message with this id.",
        "Check the id; list the project's messages with GET /api/v1/projects/{project}/messages.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        CONSENT_ALREADY_RECORDED,
        "Consent already recorded",
        "The person has already consented to SMS from this number, so no opt-in request is sent.",
        "Nothing to do: messages can be sent to this number.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        KEYWORD_NOT_FOUND,
        "Keyword not found",
        "The project has no keyword with this id.",
        "Check the id; list the project's keywords with GET /api/v1/projects/{project}/keywords.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        KEYWORD_EXISTS,
        "Keyword already exists",
        "The project already has this keyword (keywords are matched regardless of case).",
        "Change the existing keyword (PUT), or choose another word.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        RESERVED_KEYWORD,
        "Reserved keyword",
        "The word is one of the opt-out, opt-in or help words (such as STOP, START or HELP), which every "
        "project answers the same way so that people can always opt out.",
        "Choose another word for the keyword.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        TEXT_NOT_FOUND,
        "Text not found",
        "The key names no text casemsg sends (the STOP confirmation is opt_out_confirmation, HELP's answer "
        "help_text, …).",
        "List the texts and their keys with GET /api/v1/projects/{project}/texts or `casemsg project texts SLUG`.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        TEXT_REQUIRED,
        "Text may not be empty",
        "The text is one the law requires (the STOP confirmation, the answer to HELP, the opt-in question, the "
        "START confirmation, the verification code): it may be reworded and translated, never emptied.",
        "Write the text in the person's language, or send null for the language (leave the box empty on the "
        "Texts page) to go back to the project's default language or casemsg's English text.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_TRANSLATIONS_FILE,
        "Translations file not readable",
        "A translations file (CSV or .xlsx) has a row casemsg cannot apply: a missing or unknown column, a type "
        "or key that names nothing in the project, or a text its rules refuse. Every problem is listed with "
        "its row number, and nothing of the file is applied.",
        "Fix the rows named (start from an export of the project's translations: its first columns say what "
        "each row is) and upload the file again.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_GATEWAY_NAME,
        "Invalid gateway name",
        "A gateway name is 1 to 64 letters, digits, '.', '_' or '-'; it appears in the gateway's webhook URLs.",
        "Choose a name such as 'twilio-us' or 'at_kenya'.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        UNKNOWN_GATEWAY_TYPE,
        "Unknown gateway type",
        "The gateway type is not one casemsg knows; the error's message lists the known types.",
        "Use one of the listed types (for example twilio, africastalking, telerivet, http or sandbox).",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_GATEWAY_CONFIG,
        "Invalid gateway configuration",
        "The gateway's config is not a JSON object, lacks a setting its type needs (such as an account id, "
        "token or sender number), or has a setting of the wrong form.",
        "Give the settings the message names; docs/gateways.md describes each type's config.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        GATEWAY_EXISTS,
        "Gateway already exists",
        "This project already has a gateway with this name (or, for an installation-wide gateway added "
        "with `casemsg gateway add`, the installation already has one). Names are unique per project: "
        "another project's gateways never stand in the way, and are never named.",
        "Choose another name, or change the existing gateway.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        INVALID_PREFIX,
        "Invalid route prefix",
        "A gateway route's prefix is the start of the numbers it carries, in digits with the country code "
        "first (for example 254 for Kenya), or '*' for every number.",
        "Give digits such as 254 or 1206, or '*'.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        GATEWAY_IN_USE,
        "Gateway in use",
        "The gateway is still in a route (as its first gateway or a further one, in the installation's routes "
        "or a project's), or messages waiting to be sent are assigned to it: removing it would change where "
        "those numbers go without anyone deciding it. The message names the routes and the messages.",
        "Unmap it first (`casemsg gateway unmap PREFIX GATEWAY`, or the Routes page), or remove it with "
        "`--force` (the Installation page's 'take it out of its routes first'): its routes go on through their "
        "next gateway (a route with none left is removed) and its waiting messages are routed again.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        ROUTE_NOT_FOUND,
        "Route not found",
        "There is no route for this prefix (in the installation's routes, or the project's when one is given), "
        "or the route does not list the gateway named.",
        "List the routes (`casemsg gateway list`, or the Routes page) and use a prefix and gateway shown there.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        INVALID_WEBHOOK,
        "Invalid webhook",
        "An inbound message or status callback from a gateway could not be read: its body is not of the "
        "content type the gateway type expects (form data, or JSON for sandbox and JSON http gateways), is "
        "not valid UTF-8 or valid JSON, is JSON but not an object, or lacks the sender's number. Nothing is "
        "stored; the error's message says which.",
        "Check the provider's webhook settings, and for an http gateway the field names in its inbound config.",
        kind="request",
        status=400,
    ),
    ErrorCode(
        INBOUND_NOT_SUPPORTED,
        "Gateway does not receive messages",
        "An inbound message was posted to a gateway whose type cannot receive messages.",
        "Point the provider's inbound webhook at a gateway of a type that receives messages, or remove it.",
        kind="request",
        status=400,
    ),
    ErrorCode(
        STATUS_NOT_SUPPORTED,
        "Gateway sends no status callbacks",
        "A delivery report was posted to a gateway whose type sends no status callbacks.",
        "Remove the status callback URL from the provider's settings, or point it at the right gateway.",
        kind="request",
        status=400,
    ),
    ErrorCode(
        SURVEY_NOT_FOUND,
        "Survey not found",
        "The project has no survey with this id.",
        "Check the id; list the project's surveys with GET /api/v1/projects/{project}/surveys.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        INVALID_SURVEY,
        "Invalid survey",
        "The survey definition (casemsg-survey/1 JSON) or the XLSForm cannot be used. The message lists "
        "every problem found, each with the question it is about and, for an XLSForm, its sheet and row.",
        "Correct the questions, rows or settings the message names (docs/surveys.md describes the format), "
        "then send the whole survey again.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        UNKNOWN_CASE_TYPE,
        "Unknown case type",
        "A conditional alert names a case type that none of the project's cases has, so it could never "
        "match (most often a misspelling, or the wrong project).",
        "Use the case type the project's cases have (the cases page lists them), or create the cases first.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_CRITERION,
        "Invalid alert criterion",
        "A conditional alert's criteria must be a list of objects {property, operator, value}; the error's "
        "message names the criterion (by its position, property and operator) and what is wrong: a missing "
        "or blank property, a missing value for equal, not_equal or regex, a value given to has_value or "
        "has_no_value, or a days_before / days_after value that is not a whole number of days.",
        "Correct the named criterion as the message says (each operator and its value are described in "
        "docs/alerts.md).",
        kind="request",
        status=422,
    ),
    ErrorCode(
        UNKNOWN_OPERATOR,
        "Unknown criterion operator",
        "An alert criterion's operator is not one casemsg knows: equal, not_equal, has_value, has_no_value, "
        "regex, days_before or days_after.",
        "Use one of the listed operators in the criterion the message names.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_REGEX,
        "Invalid regular expression",
        "A regex criterion's value is not a valid regular expression (Python syntax), or is longer than 500 "
        "characters. The error's message names the criterion and the syntax error.",
        "Correct the expression; it matches anywhere in the property's value unless anchored with ^ and $.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        SCHEDULE_ENDED,
        "Broadcast has ended",
        "The broadcast was cancelled or has sent its last event: it can no longer be changed, paused or resumed.",
        "Create a new broadcast (a cancelled or finished one stays as the record of what was sent).",
        kind="request",
        status=409,
    ),
    ErrorCode(
        BROADCAST_NOT_FOUND,
        "Broadcast not found",
        "The project has no broadcast with this id.",
        "Check the id; list the project's broadcasts with GET /api/v1/projects/{project}/broadcasts.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        ALERT_NOT_FOUND,
        "Alert not found",
        "The project has no conditional alert with this id (it may have been deleted).",
        "Check the id; list the project's alerts with GET /api/v1/projects/{project}/alerts.",
        kind="request",
        status=404,
    ),
    # --- groups of cases -------------------------------------------------------------------------------
    ErrorCode(
        GROUP_NOT_FOUND,
        "Group not found",
        "The project has no group with this id or name (it may have been deleted). A broadcast's, an alert's "
        "or a message's recipients name a group by its id.",
        "Check the id; list the project's groups with GET /api/v1/projects/{project}/groups or casemsg groups list.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        GROUP_EXISTS,
        "Group name taken",
        "The project already has a group with this name; a group's name is unique in its project.",
        "Choose another name, or change the existing group.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        GROUP_IN_USE,
        "Group in use",
        "The group is the recipients of an active or paused broadcast, or of a conditional alert: deleting it "
        "would leave them without recipients.",
        "Cancel the broadcast or change its recipients (and change the alert's), then delete the group.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        GROUP_IS_DYNAMIC,
        "Dynamic group",
        "Cases are added to and removed from static groups only: a dynamic group's members are the open cases "
        "of its case type that meet its conditions, evaluated each time it is read.",
        "Change the dynamic group's conditions, or make a static group and add the cases to it.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        INVALID_CONDITION,
        "Invalid group condition",
        "A dynamic group's conditions must be a list of {property, operator, value} or {contact, value}; the "
        "message names the condition (by its position, property and operator) and what is wrong: an unknown "
        "operator or contact state, a missing value, a number or a date (YYYY-MM-DD) that is not one, a number "
        "of days that is not a whole number.",
        "Correct the named condition as the message says (docs/groups.md lists each operator and its value).",
        kind="request",
        status=422,
    ),
    # --- bounded work for uploads and bodies ---------------------------------------------------------
    ErrorCode(
        FILE_TOO_LARGE,
        "File too large",
        "An uploaded file is larger than its limit, or (an .xlsx, which is a zip archive) would expand to more "
        "than its limit once unzipped: an XLSForm is at most 5 MB and expands to at most 20 MB (a sheet at "
        "most 10 MB, any other part 2 MB; no part over 1 MB expanding more than 100 times); a CSV of cases "
        "uploaded on the import page is at most 10 MB. The message names the limit; the file is refused "
        "before it is parsed.",
        "Make the file smaller (split a large case import, or use `casemsg cases import` for a large CSV); a "
        "spreadsheet that is small on disk but huge unzipped is not an XLSForm casemsg can use.",
        kind="request",
        status=413,
    ),
    ErrorCode(
        REQUEST_TOO_LARGE,
        "Request body too large",
        "The request's body is larger than the API accepts: a JSON (or form) body at most 2.5 MB, a file upload "
        "(multipart/form-data) at most 10 MB (CASEMSG_MAX_UPLOAD_BYTES). It is refused from its Content-Length "
        "header, before it is read.",
        "Send less in one call: split a bulk call, or make the uploaded file smaller.",
        kind="request",
        status=413,
    ),
    ErrorCode(
        TOO_MANY_ROWS,
        "Too many rows",
        "A spreadsheet or CSV file has more rows, columns or filled cells than casemsg reads: a CSV import of "
        "cases at most 100,000 rows on the import page (1,000,000 with `casemsg cases import`, `--max-rows` to "
        "change it), 1,000 columns and 1 MB per row; an XLSForm sheet at most 10,000 rows and 200 columns, and "
        "the whole form 50,000 filled cells and 2,000,000 characters. It is refused as soon as the limit is "
        "passed, before the rest is read, and nothing is imported.",
        "Split the file into smaller ones, or remove the rows, columns or cells the message names.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        TOO_MANY_QUESTIONS,
        "Too many questions",
        "A survey has more than 2,000 questions, or its questions more than 20,000 choices in all (an SMS "
        "survey sends each question and its choices as a text message).",
        "Split the survey into smaller ones, or shorten its choice lists.",
        kind="request",
        status=422,
    ),
    # --- case sources (docs/sources.md) -------------------------------------------------------------
    ErrorCode(
        SOURCE_NOT_FOUND,
        "Source not found",
        "The project has no case source with this id (it may have been deleted, or belong to another project).",
        "List the project's sources with GET /api/v1/projects/{project}/sources or `casemsg sources list`.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        SOURCE_RUN_NOT_FOUND,
        "Source run not found",
        "The source has no run with this id (only a source's 500 newest runs are kept).",
        "List the source's runs with GET /api/v1/projects/{project}/sources/{id}/runs.",
        kind="request",
        status=404,
    ),
    ErrorCode(
        SOURCE_EXISTS,
        "Source name taken",
        "The project already has a case source with this name; names are unique in a project.",
        "Choose another name, or change the existing source.",
        kind="request",
        status=409,
    ),
    ErrorCode(
        UNKNOWN_SOURCE_TYPE,
        "Unknown source type",
        "A case source is one of the types casemsg reads: commcare, odk_central, dhis2 or push.",
        "Use one of the types the message lists.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_SOURCE_CONFIG,
        "Invalid source settings",
        "The source's config does not fit its type: an unknown key, a required key missing (a CommCare domain, "
        "an ODK entity list, a DHIS2 program, credentials), or a value of the wrong kind.",
        "Give the keys the message names; docs/sources.md lists each type's settings.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_MAPPING,
        "Invalid field mapping",
        'A source\'s field mapping is a list of rules {"from": source field, "to": case property, '
        '"transform": …}; a rule is not one, names a target twice, or has a transform casemsg does not know '
        "(phone, date, map, bool, text) or cannot use (an unknown country, a date format without codes).",
        'Correct the rule the message names (docs/sources.md, "Mapping").',
        kind="request",
        status=422,
    ),
    ErrorCode(
        SOURCE_URL_NOT_ALLOWED,
        "Source URL not allowed",
        "The source's URL is not an http:// or https:// URL casemsg may call: it reaches a loopback, private-"
        "network, link-local or cloud metadata address (directly, once resolved, or through a redirect), its host "
        "does not resolve, or it carries a user name or password. The same rules as for gateway URLs; checked "
        "when the source is saved and again at every connection.",
        "Use the system's public address. An installation whose system really is on its own network sets "
        "CASEMSG_GATEWAY_ALLOW_PRIVATE=1.",
        kind="request",
        status=422,
    ),
    ErrorCode(
        SOURCE_AUTH_FAILED,
        "The source refused the credentials",
        "The source system answered 401 or 403: the API key, password or token is wrong, expired, or lacks the "
        "permission to read these cases. The source is marked failing and tried again later, not in a loop.",
        "Type the credentials again on the source's page (or PATCH its config), then sync now. For CommCare, "
        "the user name is the e-mail address the API key belongs to.",
        kind="request",
        status=424,
    ),
    ErrorCode(
        SOURCE_REQUEST_REFUSED,
        "The source refused the request",
        "The source system answered with another 4xx: a domain, project, entity list or program that does not "
        "exist there, or a query it does not take. The message has a short excerpt of its answer.",
        "Check the source's settings against the system (domain, project id, entity list, program, org units).",
        kind="request",
        status=424,
    ),
    ErrorCode(
        SOURCE_UNAVAILABLE,
        "The source did not answer",
        "The source system timed out, dropped the connection, or answered 429 or 5xx each time casemsg tried "
        "(it waits as long as Retry-After asks, up to a minute, between tries). What was read so far is kept: "
        "the next sync goes on from there, after a back-off.",
        "Nothing to do if it passes; if it lasts, check that the system is up and reachable from casemsg.",
        kind="request",
        status=424,
    ),
    ErrorCode(
        SOURCE_BAD_ANSWER,
        "Unexpected answer from the source",
        "The source system answered something casemsg cannot read as its documented API: not JSON, a page "
        "without its list of records, a next link to another host, or more than 64 MB for one page.",
        "Check the source's base URL (it must be the system's own address) and, for very large pages, lower page_size.",
        kind="request",
        status=424,
    ),
    ErrorCode(
        UNMAPPABLE_VALUE,
        "A value does not fit its mapping",
        "A record's value cannot go through its field's transform: a date that is not in the mapping's format, "
        "a value a yes/no or value map does not list (with other=skip). The record is skipped and named in the "
        "run's log; the rest of the page is applied.",
        "Correct the value in the source system, or the mapping's transform (its format or its values).",
        kind="request",
        status=422,
    ),
    ErrorCode(
        INVALID_CASE_EXPORT,
        "Not a case export",
        "The file is not a CommCare case export casemsg can read: no caseid column, an empty file, a CSV that "
        "is not UTF-8, or an .xlsx that is not a workbook.",
        "Export the cases from CommCare HQ (Data → Export Case Data) as Excel or CSV and upload the file as it is.",
        kind="request",
        status=422,
    ),
]

CATALOGUE: dict[str, ErrorCode] = {e.code: e for e in _CATALOGUE}

KIND_TITLES: dict[Kind, str] = {
    "problem": "Message and contact problems",
    "request": "Request errors (API and CLI)",
}


def _check_catalogue() -> None:
    """Constants and entries match one to one: a new code needs both, and each spells its own name."""
    constants = {name: value for name, value in globals().items() if name.isupper() and isinstance(value, str)}
    wrong = sorted(name for name, value in constants.items() if value != name)
    if len(CATALOGUE) != len(_CATALOGUE):
        raise RuntimeError("The error catalogue lists a code twice.")
    if wrong or set(constants) != set(CATALOGUE):
        raise RuntimeError(
            "The error constants and catalogue entries differ: "
            f"misspelled {wrong}, without an entry {sorted(set(constants) - set(CATALOGUE))}, "
            f"without a constant {sorted(set(CATALOGUE) - set(constants))}."
        )
    for e in _CATALOGUE:
        if e.kind == "request" and (e.status is None or e.delay):
            raise RuntimeError(f"The request error {e.code} needs an HTTP status and cannot be a delay.")


_check_catalogue()


def get(code: str) -> ErrorCode:
    return CATALOGUE[code]


def of_kind(kind: Kind) -> list[ErrorCode]:
    """The catalogue's entries of one kind, in catalogue order."""
    return [e for e in _CATALOGUE if e.kind == kind]


def as_dict(code: str, fix: str | None = None, detail: str | None = None) -> dict[str, Any]:
    """An error as shown in the API: the catalogue's words, with the fix made specific when known."""
    e = CATALOGUE[code]
    out = {"code": e.code, "title": e.title, "description": e.description, "fix": fix or e.fix}
    if detail:
        out["detail"] = detail
    return out


def catalogue_markdown() -> str:
    """docs/errors.md, generated from the catalogue (a test keeps the file equal to this; regenerate it
    with `make errors-doc`)."""
    lines = [
        "# Error codes",
        "",
        "Every message that did not go out, and every contact that cannot be messaged, carries one of the",
        "*problem* codes; every refused API or CLI call answers with one of the *request error* codes, as",
        '`{"error": {"code": "…", "message": "…"}}` with the HTTP status shown. The same list is served at',
        "`GET /api/v1/errors` and printed by `casemsg errors`. Codes marked *(delay)* mean the message waits;",
        "they are not failures.",
        "",
        "This file is generated from `casemsg/core/errors.py`: run `make errors-doc` after changing it.",
        "",
    ]
    for kind, heading in KIND_TITLES.items():
        lines += [f"## {heading}", ""]
        for e in of_kind(kind):
            lines += [
                f"### `{e.code}`{' *(delay)*' if e.delay else ''}",
                "",
                f"**{e.title}.** {e.description}",
                "",
                f"*How to fix:* {e.fix}",
                "",
            ]
            if e.status is not None and e.kind == "request":
                lines[-1:] = ["", f"*HTTP status:* {e.status}.", ""]
            elif e.status is not None:
                lines[-1:] = [
                    "",
                    f"*Also a request error:* a call refused for this reason answers HTTP {e.status}.",
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
