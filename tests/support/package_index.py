"""A local PEP 503 package index on 127.0.0.1 with small stand-in wheels: a fake ``torch`` 9.9.9 that sees
no GPU and depends on a fake CUDA library wheel, so a GPU-runtime install runs for real but downloads
nothing from the internet. Its fixture is a pytest plugin (``conftest.pytest_plugins``)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest

FAKE_TORCH = "9.9.9"
FAKE_TORCH_LOG = "SHARP_FAKE_TORCH_LOG"  # the fake torch appends "<pid> <its file>" here when imported


def build_wheel(folder: Path, name: str, version: str, files: dict[str, bytes | str],
                requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel made with zipfile: the files, METADATA, WHEEL and RECORD."""
    dist = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    meta = f"{dist}.dist-info"
    contents: dict[str, bytes] = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    contents[f"{meta}/METADATA"] = ("Metadata-Version: 2.1\n" f"Name: {name}\n" f"Version: {version}\n"
                                    + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode()
    contents[f"{meta}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: sharp-tests\nRoot-Is-Purelib: true\n"
                                 b"Tag: py3-none-any\n")
    record = []
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{meta}/RECORD,,")
    contents[f"{meta}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as z:
        for path, data in contents.items():
            z.writestr(path, data)
    return wheel


def fake_torch_wheels(folder: Path, padding: int = 3_000_000) -> list[Path]:
    """torch 9.9.9 (``cuda.is_available()`` is False; it imports its CUDA library) and that library.
    The padding (incompressible) makes the torch download long enough to cancel while it runs."""
    folder.mkdir(parents=True, exist_ok=True)
    torch_files = {
        "torch/__init__.py": f"__version__ = {FAKE_TORCH!r}\nimport nvidia_cuda_runtime_stub as _cudart\n"
                             "from . import cuda, version\n"
                             f"import os as _os\nif _os.environ.get({FAKE_TORCH_LOG!r}):\n"
                             f"    with open(_os.environ[{FAKE_TORCH_LOG!r}], 'a') as _log:\n"
                             "        _log.write('%d %s\\n' % (_os.getpid(), __file__))\n",
        "torch/cuda.py": "def is_available():\n    return False\n\ndef device_count():\n    return 0\n",
        "torch/version.py": "cuda = '13.0'\nhip = None\n",
        "torch/_padding.bin": os.urandom(padding),
    }
    return [
        build_wheel(folder, "torch", FAKE_TORCH, torch_files, requires=("nvidia-cuda-runtime-stub==1.0",)),
        build_wheel(folder, "nvidia-cuda-runtime-stub", "1.0",
                    {"nvidia_cuda_runtime_stub/__init__.py": "NAME = 'cudart'\n"}),
    ]


class LocalIndex:
    """A PEP 503 "simple" index served by http.server on 127.0.0.1 (port 0); counts requests.
    ``chunk_delay`` seconds between 64 kB chunks slows the downloads down."""

    def __init__(self, wheels: list[Path]) -> None:
        self.wheels = {w.name: w for w in wheels}
        self.requests: list[str] = []
        self.chunk_delay = 0.0
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                index.requests.append(self.path)
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                if parts[:1] == ["simple"] and len(parts) == 1:
                    names = sorted({_project(w) for w in index.wheels})
                    self._send(b"".join(f'<a href="{n}/">{n}</a>\n'.encode() for n in names), "text/html")
                elif parts[:1] == ["simple"] and len(parts) == 2:
                    links = [f'<a href="/files/{w}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">{w}</a>\n'
                             for w, p in index.wheels.items() if _project(w) == parts[1]]
                    if links:
                        self._send("<html><body>\n".join(["", *links]).encode(), "text/html")
                    else:
                        self.send_error(404)
                elif parts[:1] == ["files"] and len(parts) == 2 and parts[1] in index.wheels:
                    self._send(index.wheels[parts[1]].read_bytes(), "application/octet-stream", index.chunk_delay)
                else:
                    self.send_error(404)

            def _send(self, body: bytes, kind: str, delay: float = 0.0) -> None:
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for start in range(0, len(body), 1 << 16):
                        self.wfile.write(body[start:start + (1 << 16)])
                        if delay:
                            time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):  # the client was killed: a cancel
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True, name="local-index").start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _project(wheel: str) -> str:
    return re.sub(r"[-_.]+", "-", wheel.split("-")[0]).lower()


@pytest.fixture(scope="session")
def local_index(tmp_path_factory):
    index = LocalIndex(fake_torch_wheels(tmp_path_factory.mktemp("wheels")))
    yield index
    index.close()


