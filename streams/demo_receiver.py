"""A webhook receiver for the demo: verifies envwatch's signatures and deduplicates by key.

It shows what an enterprise's or a duty office's endpoint does with envwatch's webhooks
(docs/notifications.md): check ``X-Envwatch-Signature`` over ``"<timestamp>.<body>"``, answer
2xx, and treat a repeated ``Idempotency-Key`` as already handled.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alerts.notify.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)


class DemoReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
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
