"""SMPP 3.4 as the `smpp` gateway type reads and writes it, above the library's PDU codec: command_status
names and their outcomes, a text's submit_sm parts (GSM-7 or UCS-2, concatenated by UDH or SAR TLVs, as
many parts as `messaging.segments` counts), and a deliver_sm read as a receipt (`StatusUpdate`) or an MO
message (`InboundSms`, long ones reassembled)."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings

from casemsg.core import errors, netguard
from casemsg.gateways.base import InboundSms, SendResult, StatusUpdate, digits

# --- command_status --------------------------------------------------------------------------------
# SMPP 3.4, 5.1.3: the names a message's error detail shows.
STATUS_NAMES: dict[int, str] = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG",
    0x07: "ESME_RINVREGDLVFLG",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL",
    0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP",
    0x33: "ESME_RINVNUMDESTS",
    0x34: "ESME_RINVDLNAME",
    0x40: "ESME_RINVDESTFLAG",
    0x42: "ESME_RINVSUBREP",
    0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP",
    0x54: "ESME_RINVREPFLAG",
    0x55: "ESME_RINVNUMMSGS",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL",
    0xC0: "ESME_RINVOPTPARSTREAM",
    0xC1: "ESME_ROPTPARNOTALLWD",
    0xC2: "ESME_RINVPARLEN",
    0xC3: "ESME_RMISSINGOPTPARAM",
    0xC4: "ESME_RINVOPTPARAMVAL",
    0xFE: "ESME_RDELIVERYFAILURE",
    0xFF: "ESME_RUNKNOWNERR",
}
ESME_ROK = 0x00
ESME_RSYSERR = 0x08
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
# The SMSC is busy: wait and submit the same part again (the bind backs off; no new attempt is counted).
BUSY = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
# Worth trying again later (a new attempt, the pipeline's back-off).
TRANSIENT = frozenset({ESME_RSYSERR, 0x64, 0xFE})
INVALID_NUMBER = frozenset({0x0B, 0x33, 0x50, 0x51})


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"command_status 0x{status:08X}")


def classify_status(message_id: int, status: int, provider_id: str = "") -> SendResult:
    """A submit_sm_resp's command_status as a message's outcome: ESME_ROK sent; busy (throttled, queue full,
    after the bind's own retries) and transient ones retry; anything else failed with the status's name."""
    if status == ESME_ROK:
        return SendResult(message_id, "sent", provider_id=provider_id)
    detail = f"SMSC answered {status_name(status)} (0x{status:02X})"
    if status in BUSY or status in TRANSIENT:
        return SendResult(message_id, "retry", error=errors.GATEWAY_ERROR, detail=detail)
    code = errors.INVALID_DESTINATION_NUMBER if status in INVALID_NUMBER else errors.GATEWAY_ERROR
    return SendResult(message_id, "failed", error=code, detail=detail)


# --- alphabets and parts -----------------------------------------------------------------------------
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_CODE = {ch: i for i, ch in enumerate(_GSM_BASIC) if ch != "\x1b"}
_GSM_EXT = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_GSM_EXT_DECODE = {v: k for k, v in _GSM_EXT.items()}
DC_DEFAULT, DC_LATIN1, DC_UCS2 = 0x00, 0x03, 0x08


def gsm7_septets(text: str) -> list[bytes] | None:
    """The text as GSM 03.38 septets, one group per character (an extension character is two), unpacked
    (one septet per byte, as SMPP's data_coding 0 carries them); None if a character is outside GSM-7."""
    out: list[bytes] = []
    for ch in text:
        if ch in _GSM_CODE:
            out.append(bytes([_GSM_CODE[ch]]))
        elif ch in _GSM_EXT:
            out.append(bytes([0x1B, _GSM_EXT[ch]]))
        else:
            return None
    return out


def gsm7_decode(data: bytes) -> str:
    out: list[str] = []
    escape = False
    for b in data:
        if escape:
            out.append(_GSM_EXT_DECODE.get(b, " "))
            escape = False
        elif b == 0x1B:
            escape = True
        elif b < len(_GSM_BASIC):
            out.append(_GSM_BASIC[b])
    return "".join(out)


def _chunks(units: list[bytes], size: int) -> list[bytes]:
    """Concatenate units into parts of at most `size` bytes; a unit (an escape pair, a surrogate pair) is
    never split across parts."""
    parts: list[bytes] = []
    cur = b""
    for u in units:
        if len(cur) + len(u) > size:
            parts.append(cur)
            cur = b""
        cur += u
    parts.append(cur)
    return parts


@dataclass(frozen=True)
class Part:
    """One submit_sm of a message."""

    short_message: bytes
    data_coding: int
    esm_class: int = 0
    sar: tuple[int, int, int] | None = None  # (reference, total, sequence) when concatenated by SAR TLVs


_refs = itertools.count(1)


@functools.lru_cache(maxsize=1024)
def _single(text: str) -> Part | None:
    """A text that fits one part, encoded (a broadcast sends one text to thousands: encoded once)."""
    septets = gsm7_septets(text)
    if septets is not None:
        return Part(b"".join(septets), DC_DEFAULT) if len(septets) <= 160 and sum(map(len, septets)) <= 160 else None
    raw = text.encode("utf-16-be")
    return Part(raw, DC_UCS2) if len(raw) <= 140 else None


def encode_parts(text: str, long_messages: str = "udh", ref: int | None = None) -> list[Part]:
    """The submit_sm parts of a text: GSM-7 (data_coding 0) when every character is in GSM-7, else UCS-2
    (data_coding 8); one part up to 160 septets / 70 UTF-16 units, else parts of 153 / 67 — the counts of
    `messaging.segments`, so a message's `segments` is what the SMSC got. `ref` (the message's id) makes the
    concatenation reference the same at every attempt, so a part submitted again joins the parts sent before."""
    if len(text) <= 160:
        one = _single(text)
        if one is not None:
            return [one]
    septets = gsm7_septets(text)
    if septets is not None:
        units, coding, single, each = septets, DC_DEFAULT, 160, 153
    else:
        raw = text.encode("utf-16-be")
        units = []
        for ch in text:
            units.append(ch.encode("utf-16-be"))
        assert sum(len(u) for u in units) == len(raw)
        coding, single, each = DC_UCS2, 140, 134  # bytes: 70 and 67 UTF-16 units
    if sum(len(u) for u in units) <= single:
        return [Part(b"".join(units), coding)]
    chunks = _chunks(units, each)
    base = next(_refs) if ref is None else ref
    total = len(chunks)
    if long_messages == "sar":
        return [Part(c, coding, 0, (base % 65536, total, i + 1)) for i, c in enumerate(chunks)]
    return [Part(bytes([5, 0, 3, base % 256, total, i + 1]) + c, coding, 0x40) for i, c in enumerate(chunks)]


def decode_text(data: bytes, data_coding: int) -> str:
    if data_coding == DC_UCS2:
        return data.decode("utf-16-be", "replace")
    if data_coding == DC_LATIN1:
        return data.decode("latin-1")
    if data_coding == DC_DEFAULT:
        return gsm7_decode(data)
    return data.decode("utf-8", "replace")


# --- deliver_sm: receipts and MO -----------------------------------------------------------------------
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_MESSAGE_PAYLOAD = 0x0424
_RECEIPT_ID = re.compile(r"\bid:(\S+)", re.I)
_RECEIPT_STAT = re.compile(r"\bstat:(\w+)", re.I)
_RECEIPT_ERR = re.compile(r"\berr:(\w+)", re.I)
# message_state TLV values (SMPP 3.4, 5.3.2.35) as the receipt text's stat: words
_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}


@dataclass
class Delivered:
    """What a deliver_sm (or a batch of them) brought: status updates and inbound messages."""

    statuses: list[StatusUpdate] = field(default_factory=list)
    inbound: list[InboundSms] = field(default_factory=list)


def receipt(esm_class: int, text: str, tlvs: Mapping[int, bytes]) -> StatusUpdate | None:
    """A delivery receipt (esm_class message type 0x04, or 0x08/0x10/0x20 acknowledgements) as a status
    update; None when the deliver_sm is an MO message."""
    if not esm_class & 0x3C:
        return None
    rid = tlvs.get(TLV_RECEIPTED_MESSAGE_ID, b"").rstrip(b"\x00").decode("latin-1")
    m_id = _RECEIPT_ID.search(text)
    if not rid and m_id:
        rid = m_id.group(1)
    state = tlvs.get(TLV_MESSAGE_STATE)
    m_stat = _RECEIPT_STAT.search(text)
    stat = (m_stat.group(1).upper() if m_stat else "") or (_STATES.get(state[0], "") if state else "")
    if not rid:
        return None
    if stat == "DELIVRD":
        return StatusUpdate(rid, "delivered")
    if stat in ("ENROUTE", "ACCEPTD", ""):
        return StatusUpdate(rid, "sent")
    m_err = _RECEIPT_ERR.search(text)
    detail = f"Delivery receipt stat:{stat}" + (f" err:{m_err.group(1)}" if m_err else "")
    return StatusUpdate(rid, "failed", error=errors.GATEWAY_ERROR, detail=detail)


class Reassembly:
    """MO parts (UDH or SAR) held until the whole message is in; keyed by sender and reference."""

    def __init__(self, limit: int = 10_000):
        self.parts: dict[tuple[str, int, int], dict[int, str]] = {}
        self.limit = limit

    def add(self, sender: str, ref: int, total: int, seq: int, text: str) -> str | None:
        key = (sender, ref, total)
        got = self.parts.setdefault(key, {})
        got[seq] = text
        if len(got) < total:
            if len(self.parts) > self.limit:
                self.parts.pop(next(iter(self.parts)))
            return None
        del self.parts[key]
        return "".join(got[i] for i in sorted(got))


def read_deliver_sm(
    source: str,
    destination: str,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
    tlvs: Mapping[int, bytes],
    parts: Reassembly,
) -> StatusUpdate | InboundSms | None:
    """A deliver_sm as a receipt (`StatusUpdate`) or an MO message (`InboundSms`); None for a part of a
    longer MO still waiting for the rest."""
    body = short_message or tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    if esm_class & 0x3C:
        return receipt(esm_class, body.decode("latin-1"), tlvs)
    ref = total = seq = 0
    if esm_class & 0x40 and body:
        udh, body = body[: body[0] + 1], body[body[0] + 1 :]
        i = 1
        while i + 1 < len(udh):
            iei, n = udh[i], udh[i + 1]
            if iei == 0 and n == 3:
                ref, total, seq = udh[i + 2], udh[i + 3], udh[i + 4]
            elif iei == 8 and n == 4:
                ref, total, seq = int.from_bytes(udh[i + 2 : i + 4], "big"), udh[i + 4], udh[i + 5]
            i += 2 + n
    elif TLV_SAR_TOTAL_SEGMENTS in tlvs:
        ref = int.from_bytes(tlvs.get(TLV_SAR_MSG_REF_NUM, b"\x00"), "big")
        total = tlvs[TLV_SAR_TOTAL_SEGMENTS][0]
        seq = tlvs.get(TLV_SAR_SEGMENT_SEQNUM, b"\x01")[0]
    text = decode_text(body, data_coding)
    if total > 1:
        whole = parts.add(source, ref, total, seq, text)
        if whole is None:
            return None
        text = whole
    return InboundSms(from_number=digits(source), text=text, to_number=digits(destination))


def check_host(host: str, port: int) -> None:
    """Refuse an internal address as an SMSC (the same guard as every gateway URL), unless the installation
    allows them (CASEMSG_GATEWAY_ALLOW_PRIVATE). Raises netguard.BlockedAddress."""
    netguard.check_url(
        f"http://{host}:{port}/", allow_private=settings.CASEMSG_GATEWAY_ALLOW_PRIVATE, label="The SMSC host"
    )
