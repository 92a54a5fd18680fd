"""The smpp gateway's reading and writing of SMPP 3.4, without a server: receipts in both forms, MO parts
reassembled, parts matching the message's segments, command_status names."""

from __future__ import annotations

import pytest

from casemsg.core import errors
from casemsg.gateways import smpp_codec as codec
from casemsg.gateways.base import InboundSms, StatusUpdate
from casemsg.messaging import segments


def read(esm_class: int, body: bytes, tlvs: dict[int, bytes] | None = None, coding: int = 0, parts=None):
    return codec.read_deliver_sm(
        "254712345678", "22555", esm_class, coding, body, tlvs or {}, parts or codec.Reassembly()
    )


def test_a_receipt_in_text_form_only():
    text = b"id:0A1B2C sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:Hi"
    assert read(0x04, text) == StatusUpdate("0A1B2C", "delivered")


def test_a_receipt_by_its_tlvs_only():
    tlvs = {codec.TLV_RECEIPTED_MESSAGE_ID: b"77\x00", codec.TLV_MESSAGE_STATE: bytes([5])}
    u = read(0x04, b"", tlvs)
    assert isinstance(u, StatusUpdate) and (u.provider_id, u.status, u.error) == ("77", "failed", errors.GATEWAY_ERROR)
    assert "UNDELIV" in u.detail


@pytest.mark.parametrize(("stat", "status"), [("ENROUTE", "sent"), ("ACCEPTD", "sent"), ("EXPIRED", "failed")])
def test_receipt_states(stat, status):
    u = read(0x04, f"id:9 stat:{stat} err:0C4".encode())
    assert isinstance(u, StatusUpdate) and u.status == status
    if status == "failed":
        assert u.detail == f"Delivery receipt stat:{stat} err:0C4"


def test_mo_parts_are_reassembled_in_order_whatever_the_arrival():
    parts = codec.Reassembly()
    udh = lambda seq: bytes([5, 0, 3, 42, 3, seq])  # noqa: E731
    assert read(0x40, udh(2) + b"world, ", parts=parts) is None
    assert read(0x40, udh(3) + b"again", parts=parts) is None
    mo = read(0x40, udh(1) + b"Hello ", parts=parts)
    assert mo == InboundSms(from_number="254712345678", text="Hello world, again", to_number="22555")


def test_mo_in_ucs2_and_by_sar_tlvs():
    tlvs = {codec.TLV_SAR_MSG_REF_NUM: b"\x00\x07", codec.TLV_SAR_TOTAL_SEGMENTS: b"\x02"}
    parts = codec.Reassembly()
    assert read(0, "Habari ".encode("utf-16-be"), {**tlvs, codec.TLV_SAR_SEGMENT_SEQNUM: b"\x01"}, 8, parts) is None
    mo = read(0, "🙂".encode("utf-16-be"), {**tlvs, codec.TLV_SAR_SEGMENT_SEQNUM: b"\x02"}, 8, parts)
    assert isinstance(mo, InboundSms) and mo.text == "Habari 🙂"


@pytest.mark.parametrize(
    "text",
    [
        "Hello",
        "x" * 160,
        "x" * 161,
        "Price: 5€ [ok] {yes} ~ | ^ \\ " * 9,  # extension characters take two septets
        "ñandú " * 40,  # GSM-7 national characters
        "Ωmega 🙂 " * 20,  # UCS-2 with surrogate pairs
        "क" * 70,
        "क" * 71,
    ],
)
def test_parts_match_the_segments_the_message_counts(text):
    parts = codec.encode_parts(text)
    assert len(parts) == segments.count(text)
    if len(parts) > 1:
        assert all(p.esm_class == 0x40 and p.short_message[:3] == b"\x05\x00\x03" for p in parts)
        body = b"".join(p.short_message[6:] for p in parts)
    else:
        body = parts[0].short_message
    assert codec.decode_text(body, parts[0].data_coding) == text


def test_status_names_and_outcomes():
    assert codec.classify_status(1, 0, "abc").status == "sent"
    r = codec.classify_status(1, 0x0B)
    assert (r.status, r.error) == ("failed", errors.INVALID_DESTINATION_NUMBER) and "ESME_RINVDSTADR" in r.detail
    assert codec.classify_status(1, 0x58).status == "retry"  # throttled past the bind's own retries
    assert codec.classify_status(1, 0x08).status == "retry"  # ESME_RSYSERR
    r = codec.classify_status(1, 0x45)
    assert r.status == "failed" and "ESME_RSUBMITFAIL" in r.detail
    assert codec.status_name(0x401) == "command_status 0x00000401"
