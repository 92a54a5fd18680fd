"""A fake SMSC: a real SMPP 3.4 server on 127.0.0.1 for the `smpp` gateway's tests and bench/smpp.py.

It speaks SMPP over TCP with asyncio, on a thread of its own (tests are synchronous). The message PDUs are
decoded and encoded with the same library the gateway binds with (`smpp34.decode`, `smpp34.DeliverSm`); the
header-only answers (bind_*_resp, submit_sm_resp, enquire_link_resp, unbind_resp) are packed here. The
library's own `smpp34.Server` cannot refuse a bind, drop a connection mid-window or hold answers, which is
what the tests need, hence a server of our own on its codec.

What a test can tell it (attributes, read at each PDU):
- `refuse_bind`: answer every bind with ESME_RBINDFAIL (0x0D), or `bind_status` for another status;
  `credentials` (system_id → password) answers ESME_RINVPASWD (0x0E) for a wrong password;
- `throttle(n, status=ESME_RTHROTTLED)`: answer the next n submit_sm with that status;
- `refuse_submits(status)`: answer every submit_sm with a permanent status (e.g. ESME_RINVDSTADR);
- `drop_after(n, unanswered=0)`: answer n more submit_sm; then take `unanswered` more (they count as
  submitted: the SMSC has them) without answering them, and close the connection (at the next submit when
  `unanswered` is 0, without taking it);
- `hold_after(n)`: answer n more submit_sm, then take every further one without answering (as an SMSC
  whose responses are lost), until `release()`;
- `receipts`: send a delivery receipt (`id:… stat:DELIVRD`, esm_class 0x04, receipted_message_id TLV) for
  each accepted submit whose registered_delivery asks for one;
- `deliver_mo(source, destination, text)`: an MO deliver_sm to every bound receiver/transceiver.

What it saw: `submits` (every accepted submit_sm, in order, as `Submitted`), `binds`, `enquire_links`.

    python -m fakes.smsc --port 2775     # serves until interrupted (the benchmark runs it in a child process)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

import smpp34

BIND_RECEIVER, BIND_TRANSMITTER, SUBMIT_SM, DELIVER_SM, UNBIND, BIND_TRANSCEIVER, ENQUIRE_LINK = (
    0x01,
    0x02,
    0x04,
    0x05,
    0x06,
    0x09,
    0x15,
)
RESP = 0x80000000
GENERIC_NACK = 0x80000000
ESME_ROK = 0x00
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RTHROTTLED = 0x58
ESME_RMSGQFUL = 0x14
ESME_RINVDSTADR = 0x0B
HEADER = struct.Struct(">IIII")


@dataclass
class Submitted:
    """One submit_sm the SMSC accepted."""

    message_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)
    system_id: str = ""

    @property
    def udh(self) -> bytes:
        """The user data header (esm_class 0x40), or b""."""
        if not self.esm_class & 0x40 or not self.short_message:
            return b""
        return self.short_message[: self.short_message[0] + 1]

    @property
    def payload(self) -> bytes:
        return self.short_message[len(self.udh) :]

    @property
    def text(self) -> str:
        """The part's text: UCS-2 for data_coding 8, else GSM-7 unpacked one septet per byte (the default
        alphabet's basic characters, which is what the tests send)."""
        if self.data_coding == 8:
            return self.payload.decode("utf-16-be")
        return _gsm_decode(self.payload)


_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}


def _gsm_decode(data: bytes) -> str:
    out: list[str] = []
    escape = False
    for b in data:
        if escape:
            out.append(_GSM_EXT.get(b, "?"))
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(_GSM_BASIC[b] if b < len(_GSM_BASIC) else "?")
    return "".join(out)


def _cstrings(body: bytes, n: int) -> tuple[list[str], int]:
    out: list[str] = []
    pos = 0
    for _ in range(n):
        end = body.index(b"\x00", pos)
        out.append(body[pos:end].decode("latin-1"))
        pos = end + 1
    return out, pos


class _Session:
    def __init__(self, smsc: FakeSmsc, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.smsc = smsc
        self.reader = reader
        self.writer = writer
        self.system_id = ""
        self.bound = 0  # the bind command id, once bound
        self.seq = itertools.count(1)

    def send(self, command_id: int, status: int, seq: int, body: bytes = b"") -> None:
        self.writer.write(HEADER.pack(16 + len(body), command_id, status, seq) + body)

    def send_pdu(self, pdu: bytes) -> None:
        self.writer.write(pdu)

    @property
    def receives(self) -> bool:
        return self.bound in (BIND_RECEIVER, BIND_TRANSCEIVER)

    async def run(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(16)
                length, command_id, _status, seq = HEADER.unpack(head)
                body = await self.reader.readexactly(length - 16)
                if not await self.handle(command_id, seq, head + body, body):
                    break
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.smsc._sessions.discard(self)
            self.writer.close()

    async def handle(self, command_id: int, seq: int, pdu: bytes, body: bytes) -> bool:
        smsc = self.smsc
        if command_id in (BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER):
            (system_id, password, _system_type), _ = _cstrings(body, 3)
            status = smsc.bind_status if smsc.refuse_bind else ESME_ROK
            if status == ESME_ROK and smsc.credentials is not None:
                if system_id not in smsc.credentials:
                    status = ESME_RINVSYSID
                elif smsc.credentials[system_id] != password:
                    status = ESME_RINVPASWD
            smsc.binds.append((system_id, command_id, status))
            self.send(command_id | RESP, status, seq, smsc.system_id.encode() + b"\x00")
            if status != ESME_ROK:
                return False
            self.system_id, self.bound = system_id, command_id
            return True
        if not self.bound:
            self.send(GENERIC_NACK, 0x04, seq)  # ESME_RINVBNDSTS
            return True
        if command_id == ENQUIRE_LINK:
            smsc.enquire_links += 1
            self.send(ENQUIRE_LINK | RESP, ESME_ROK, seq)
            return True
        if command_id == UNBIND:
            self.send(UNBIND | RESP, ESME_ROK, seq)
            return False
        if command_id == SUBMIT_SM:
            return self.submit(seq, pdu)
        if command_id & RESP:
            return True  # a deliver_sm_resp
        self.send(GENERIC_NACK, 0x03, seq)  # ESME_RINVCMDID
        return True

    def submit(self, seq: int, pdu: bytes) -> bool:
        smsc = self.smsc
        with smsc._lock:
            silent = False  # taken, not answered
            if smsc._drop_after is not None:
                if smsc._drop_after <= 0:
                    if smsc._unanswered <= 0:
                        smsc._drop_after = None
                        smsc.dropped += 1
                        self.writer.transport.abort()  # no answer, no FIN handshake: the line just goes
                        return False
                    smsc._unanswered -= 1
                    silent = True
                else:
                    smsc._drop_after -= 1
            if smsc._hold_after is not None:
                if smsc._hold_after <= 0:
                    silent = True
                else:
                    smsc._hold_after -= 1
            if smsc._throttle > 0:
                smsc._throttle -= 1
                smsc.throttled += 1
                self.send(SUBMIT_SM | RESP, smsc._throttle_status, seq)
                return True
            if smsc._refuse_status:
                self.send(SUBMIT_SM | RESP, smsc._refuse_status, seq)
                return True
            message_id = f"{next(smsc._ids):x}"
        sm = smpp34.decode(pdu)
        assert isinstance(sm, smpp34.SubmitSm)
        sub = Submitted(
            message_id,
            sm.source_addr,
            sm.destination_addr,
            sm.data_coding,
            sm.esm_class,
            sm.registered_delivery,
            bytes(sm.short_message),
            {t.tag: bytes(t.value) for t in sm.tlvs},
            self.system_id,
        )
        if smsc.keep_submits:
            smsc.submits.append(sub)
        smsc.submit_count += 1
        if silent:
            smsc.unanswered.append(sub)
            if smsc._drop_after is not None and smsc._drop_after <= 0 and smsc._unanswered <= 0:
                smsc._drop_after = None
                smsc.dropped += 1
                self.writer.transport.abort()
                return False
            return True
        smsc.answered.append(message_id)
        self.send(SUBMIT_SM | RESP, ESME_ROK, seq, message_id.encode() + b"\x00")
        if smsc.receipts and sub.registered_delivery & 0x01 and self.receives:
            self.receipt(sub.message_id, sub.destination, sub.source, "DELIVRD")
        return True

    def receipt(self, message_id: str, source: str, destination: str, stat: str) -> None:
        err = "000" if stat == "DELIVRD" else "001"
        text = (
            f"id:{message_id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:{stat} err:{err} text:"
        )
        state = {"DELIVRD": 2, "UNDELIV": 5, "REJECTD": 8, "EXPIRED": 3}.get(stat, 5)
        pdu = smpp34.DeliverSm(
            source,
            destination,
            text.encode(),
            esm_class=0x04,
            tlvs=[
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\x00"),
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([state])),
            ],
            sequence_number=next(self.seq),
        )
        self.send_pdu(pdu.encode())


class FakeSmsc:
    """An SMPP server on 127.0.0.1, run on its own thread: `FakeSmsc().start()`; `stop()` closes it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, system_id: str = "fakesmsc", **options: Any):
        self.host, self.port, self.system_id = host, port, system_id
        self.refuse_bind = False
        self.bind_status = ESME_RBINDFAIL
        self.credentials: dict[str, str] | None = None
        self.receipts = True
        self.keep_submits = True
        self.submits: list[Submitted] = []
        self.submit_count = 0
        self.binds: list[tuple[str, int, int]] = []
        self.enquire_links = 0
        self.throttled = 0
        self.dropped = 0
        self.unanswered: list[Submitted] = []  # taken without a submit_sm_resp (drop_after, hold_after)
        self.answered: list[str] = []  # the message_id of every submit answered ESME_ROK
        for k, v in options.items():
            setattr(self, k, v)
        self._throttle = 0
        self._throttle_status = ESME_RTHROTTLED
        self._refuse_status = 0
        self._drop_after: int | None = None
        self._unanswered = 0
        self._hold_after: int | None = None
        self._ids = itertools.count(0x1000)
        self._lock = threading.Lock()
        self._sessions: set[_Session] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # --- what a test tells it ------------------------------------------------------------------------
    def throttle(self, n: int, status: int = ESME_RTHROTTLED) -> None:
        with self._lock:
            self._throttle, self._throttle_status = n, status

    def refuse_submits(self, status: int) -> None:
        self._refuse_status = status

    def drop_after(self, n: int, unanswered: int = 0) -> None:
        with self._lock:
            self._drop_after, self._unanswered = n, unanswered

    def hold_after(self, n: int) -> None:
        with self._lock:
            self._hold_after = n

    def release(self) -> None:
        with self._lock:
            self._hold_after = None

    def deliver_mo(self, source: str, destination: str, text: str) -> None:
        """An MO message to every bound receiver (UCS-2 when the text is not ASCII)."""
        coding, data = (0, text.encode("ascii")) if text.isascii() else (8, text.encode("utf-16-be"))

        def send() -> None:
            for s in list(self._sessions):
                if s.receives:
                    s.send_pdu(
                        smpp34.DeliverSm(
                            source, destination, data, data_coding=coding, sequence_number=next(s.seq)
                        ).encode()
                    )

        self._call(send)

    def receipt(self, message_id: str, stat: str = "DELIVRD") -> None:
        def send() -> None:
            for s in list(self._sessions):
                if s.receives:
                    s.receipt(message_id, "0", "0", stat)

        self._call(send)

    def drop_connections(self) -> None:
        self._call(lambda: [s.writer.transport.abort() for s in list(self._sessions)])

    @property
    def bound_sessions(self) -> int:
        return len([s for s in self._sessions if s.bound])

    def _call(self, fn: Any) -> None:
        assert self._loop is not None
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    # --- running -------------------------------------------------------------------------------------
    async def _serve(self) -> asyncio.Server:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            session = _Session(self, reader, writer)
            self._sessions.add(session)
            await session.run()

        server = await asyncio.start_server(accept, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        return server

    def start(self) -> FakeSmsc:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-smsc", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return
        loop, server = self._loop, self._server

        async def close() -> None:
            server.close()
            for s in list(self._sessions):
                s.writer.transport.abort()

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FakeSmsc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--no-receipts", action="store_true")
    args = parser.parse_args(argv)
    smsc = FakeSmsc(port=args.port, receipts=not args.no_receipts, keep_submits=False)

    async def serve() -> None:
        smsc._loop = asyncio.get_running_loop()
        server = await smsc._serve()
        print(f"listening {smsc.host}:{smsc.port}", flush=True)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
