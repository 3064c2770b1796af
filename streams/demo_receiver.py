"""A webhook receiver for the demo: verifies envwatch's signatures and deduplicates by key.

It shows what an enterprise's or a duty office's endpoint does with envwatch's webhooks
(docs/notifications.md): check ``X-Envwatch-Signature`` over ``"<timestamp>.<body>"``, answer
2xx, and treat a repeated ``Idempotency-Key`` as already handled.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO

import orjson

from alerts.notify.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)


def _received(receiver: str, body: bytes) -> bytes:
    """What a receiver got, as one line: who, what kind, state, reason, event time, the texts,
    and for an enterprise's duties under a warning its measures (``duties``)."""
    try:
        ew = orjson.loads(body).get("envwatch", {})
    except orjson.JSONDecodeError:
        ew = {}
    line = {
        "receiver": receiver,
        "kind": ew.get("kind"),
        "state": ew.get("state"),
        "reason": ew.get("reason"),
        "level": ew.get("level"),
        "locality": ew.get("locality"),
        "at": ew.get("at"),
        "texts": ew.get("texts"),
    }
    if ew.get("duties") is not None:
        line["duties"] = ew["duties"]
    return orjson.dumps(line) + b"\n"


class DemoReceiver:
    def __init__(self, secret: str, log: BinaryIO | None = None) -> None:
        self.secret = secret
        #: one JSON line per notification accepted (``notifications.jsonl`` of the demo)
        self.log = log
        self.keys: set[str] = set()
        self.by_receiver: Counter[str] = Counter()
        self.requests = 0
        self.bad_signatures = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = verify_signature(
                    receiver.secret,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    self.headers.get(SIGNATURE_HEADER, ""),
                )
                with receiver._lock:
                    receiver.requests += 1
                    if not ok:
                        receiver.bad_signatures += 1
                    else:
                        key = self.headers.get(IDEMPOTENCY_HEADER, "")
                        if key not in receiver.keys:
                            receiver.keys.add(key)
                            receiver.by_receiver[self.path.strip("/")] += 1
                            if receiver.log is not None:
                                receiver.log.write(_received(self.path.strip("/"), body))
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="demo-webhooks", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> DemoReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
