"""A real HTTP server on 127.0.0.1 for download tests, with a few misbehaviours."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path


class WeightsServer:
    """Serves files from ``root`` over HTTP on a free loopback port.

    ``truncate`` (set of relative paths): announce the full Content-Length but send
    half and close. ``delay_s``: sleep between 64 KiB chunks (slow transfers).
    ``requests``: the paths requested, in order.
    """

    def __init__(self, root: Path, *, delay_s: float = 0.0):
        self.root = Path(root)
        self.truncate: set[str] = set()
        self.delay_s = delay_s
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                relative = self.path.lstrip("/")
                server.requests.append(relative)
                path = server.root / relative
                if not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if relative in server.truncate:
                    data = data[: len(data) // 2]
                for start in range(0, len(data), 65536):
                    self.wfile.write(data[start:start + 65536])
                    if server.delay_s:
                        time.sleep(server.delay_s)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> "WeightsServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
