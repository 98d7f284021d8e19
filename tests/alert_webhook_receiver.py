"""A real HTTP receiver on 127.0.0.1 for alert tests: records every POST, answers as scripted.

Each scripted reply is ``(status, headers, delay_seconds)``; when the script runs out it answers
200 "ok" like a Slack incoming webhook.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_PATH = "/services/T0CRYPTO/B0LAKE/s3cr3tW3bh00kT0k3n"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)

    def payloads(self) -> list[dict]:
        return [item.body for item in self.received]


def start_receiver() -> tuple[ThreadingHTTPServer, Receiver]:
    state: Receiver | None = None
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with lock:
                state.received.append(Received(self.path, dict(self.headers), json.loads(raw)))
                status, headers, delay = state.script.pop(0) if state.script else (200, {}, 0.0)
            if delay:
                time.sleep(delay)
            body = b"ok" if status == 200 else (b"invalid_payload" if status < 500 else b"internal_error")
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state
