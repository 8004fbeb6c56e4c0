"""A real HTTP server on 127.0.0.1 that serves one file with Range support and can misbehave, for the
download tests (core and Blender). Its fixtures are a pytest plugin (``conftest.pytest_plugins``)."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sharp_addon import dependencies

HAS_TORCH = __import__("importlib.util").util.find_spec("torch") is not None
NAME = dependencies.CHECKPOINT_NAME
BLOCK = 64 * 1024


class Server:
    """Serves one file at ``url`` with Range support, counting requests and bytes, and can misbehave:
    drop the connection after N body bytes (once), go silent after N bytes, ignore Range, flip bytes
    in the middle of the file, send slowly."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.requests: list[dict] = []  # {"range": the Range header or None, "status": ..., "sent": body bytes}
        self.drop_after: int | None = None
        self.stall_after: int | None = None
        self.ignore_range = False
        self.corrupt = False
        self.delay = 0.0  # seconds after each 64 KiB block
        self.released = threading.Event()  # ends a stall
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.handle(self)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/{NAME}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def sent(self) -> int:
        return sum(r["sent"] for r in self.requests)

    def body(self) -> bytes:
        return corrupted(self.payload) if self.corrupt else self.payload

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        record = {"range": h.headers.get("Range"), "status": 0, "sent": 0}
        self.requests.append(record)
        if h.path != f"/{NAME}":
            record["status"] = 404
            h.send_error(404)
            return
        body, start = self.body(), 0
        if record["range"] and not self.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", record["range"]).group(1))
            if start >= len(body):
                record["status"] = 416
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        record["status"] = 206 if start else 200
        h.send_response(record["status"])
        h.send_header("Content-Length", str(len(body) - start))
        h.send_header("Accept-Ranges", "bytes")
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        h.end_headers()
        drop, self.drop_after = self.drop_after, None  # once
        stall, self.stall_after = self.stall_after, None
        for i in range(start, len(body), BLOCK):
            block = body[i:i + BLOCK]
            limit = min(x for x in (drop, stall, len(body)) if x is not None)
            block = block[: max(limit - record["sent"], 0)]
            record["sent"] += len(block)
            try:
                h.wfile.write(block)
                h.wfile.flush()
            except OSError:
                return
            if drop is not None and record["sent"] >= drop:
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-file
                return
            if stall is not None and record["sent"] >= stall:
                self.released.wait(30)
                return
            if self.delay:
                time.sleep(self.delay)

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def corrupted(data: bytes) -> bytes:
    """``data`` with 16 bytes in the middle flipped (same size)."""
    flipped = bytearray(data)
    for i in range(len(flipped) // 2, len(flipped) // 2 + 16):
        flipped[i] ^= 0xFF
    return bytes(flipped)


def make_payload() -> bytes:
    """A small synthetic checkpoint: the tiny SHARP network saved by torch, or (without torch) a zip
    archive of the same layout (the checks that need torch are then skipped, and say so)."""
    buffer = io.BytesIO()
    if HAS_TORCH:
        import torch

        from .builders import tiny_state_dict

        torch.save(tiny_state_dict(), buffer)
    else:
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("tiny/data.pkl", b"\x80\x02}q\x00." * 100)
            for i in range(12):
                archive.writestr(f"tiny/data/{i}", bytes(range(256)) * 4096)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def payload() -> bytes:
    return make_payload()


@pytest.fixture
def server(payload):
    s = Server(payload)
    yield s
    s.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
