"""Downloading over HTTP(S) with resume, cancel and a check before the file gets its name.

No bpy. ``fetch(url, target)`` downloads with urllib into ``<target>.part``: progress callback,
cancel callback, a socket timeout, and *resume*: a ``.part`` left by an interrupted run is continued
with ``Range: bytes=N-`` (206 appends; a 200 that ignores the range starts over; 416 means the part
is already complete, or does not fit the server's file and is started over). A connection that
breaks after making progress is resumed automatically ``retries`` times. Only a file that passes
``checks.check`` is renamed to its final name (atomic ``os.replace``); a download that fails it is
removed, and says so.
"""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO

from ..errors import Cancelled, CheckpointError, DownloadError, OutputError, SharpError
from ..files import path_kind, size_text
from .checks import (
    CHUNK_BYTES,
    Cancel,
    Expected,
    Installed,
    Progress,
    Rejected,
    WeightsCheck,
    check,
    expected_for,
    file_size,
    problem_of,
    torch_weights_check,
)

TIMEOUT_SECONDS = 30.0  # a connection that sends nothing for this long is given up (and resumed later)
RETRIES = 3  # automatic resumptions of a connection that broke after making progress
RETRY_DELAY_SECONDS = 1.0  # times the attempt number
USER_AGENT = "sharp-from-image (Blender extension; Python urllib)"


def part_path(target: str | os.PathLike[str]) -> Path:
    """Where a download of ``target`` collects its bytes until it is verified."""
    target = Path(target)
    return target.with_name(target.name + ".part")


class _Broken(Exception):
    """The connection ended before the whole file arrived (resumable)."""

    def __init__(self, reason: str, done: int, total: int | None, first: int) -> None:
        super().__init__(reason)
        self.reason, self.done, self.total, self.first = reason, done, total, first
        self.progressed = done > first


class _Restart(Exception):
    """The partial file does not fit what the server sends: drop it and start from byte 0."""


def fetch(url: str, target: str | os.PathLike[str], *, expected: Expected | None = None,
          progress: Progress | None = None, cancel: Cancel | None = None, timeout: float = TIMEOUT_SECONDS,
          retries: int = RETRIES, check_weights: WeightsCheck | None = torch_weights_check) -> Installed:
    """Download ``url`` to ``target`` through ``<target>.part`` and install it only once it passes ``verify``.

    ``expected`` defaults to ``expected_for(target)``; ``check_weights`` is the key-and-shape check
    (default: ``torch_weights_check``; None: skipped). Raises ``DownloadError`` (unreachable, refused,
    broken: the ``.part`` is kept for resuming; rejected: it is removed), ``OutputError`` (the target
    cannot be written) or ``Cancelled`` (the ``.part`` is kept, or removed when it is empty). Nothing
    is ever left under the final name unless it passed.
    """
    target = Path(target).expanduser()
    part = part_path(target)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise DownloadError.about(url, "is not an http:// or https:// address")
    _prepare(target)
    try:
        total, resumed_from = _download_part(url, part, progress, cancel, timeout, retries)
    except (Cancelled, KeyboardInterrupt):
        if part.exists() and file_size(part) == 0:
            part.unlink(missing_ok=True)
        raise
    summary = _check_part(url, part, expected or expected_for(target), total, progress, cancel, check_weights)
    try:
        os.replace(part, target)
    except OSError as e:
        raise OutputError.about(target, f"cannot be written ({e.strerror or e}); the checked download is kept in "
                                f"'{part}'") from None
    return Installed(target, file_size(target), summary, resumed_from=resumed_from)


def _download_part(url: str, part: Path, progress: Progress | None, cancel: Cancel | None, timeout: float,
                   retries: int) -> tuple[int, int]:
    """Requests until ``part`` holds the whole file, resuming a connection that broke after making progress
    ``retries`` times; (the file's size, the byte the first answered request began at)."""
    resumed_from: int | None = None
    attempt, allow_restart = 0, True
    while True:
        try:
            total, first = _transfer(url, part, progress, cancel, timeout, allow_restart)
            return total, first if resumed_from is None else resumed_from
        except _Restart:
            part.unlink(missing_ok=True)
            resumed_from, allow_restart = 0, False
        except _Broken as broken:
            resumed_from = broken.first if resumed_from is None else resumed_from
            if attempt >= retries or not broken.progressed:
                raise DownloadError.about(
                    url, f"the connection broke after {size_text(broken.done)} of {size_text(broken.total)} "
                    f"({broken.reason}); {size_text(file_size(part))} are kept in '{part}': download again to resume"
                ) from None
            attempt += 1
            _sleep(RETRY_DELAY_SECONDS * attempt, cancel)


def _check_part(url: str, part: Path, expected: Expected, total: int, progress: Progress | None,
                cancel: Cancel | None, check_weights: WeightsCheck | None) -> str:
    """``checks.check`` of what arrived; a file that fails it is removed, and the error says so."""
    try:
        return check(part, expected, total, progress, cancel, check_weights)
    except Rejected as e:
        part.unlink(missing_ok=True)
        raise DownloadError.about(url, f"the file received {e.problem}; it was removed and nothing was "
                                  "installed: download it again") from None
    except CheckpointError as e:
        part.unlink(missing_ok=True)
        raise DownloadError.about(url, f"the file received is not a usable SHARP checkpoint ({problem_of(e)}); "
                                  "it was removed and nothing was installed") from None
    except Cancelled:
        raise Cancelled(f"cancelled while checking the download: the complete file is kept in '{part}' and is "
                        "checked again (not downloaded again) next time") from None
    except SharpError as e:  # the check itself could not run (not the file's fault): keep the file
        raise DownloadError.about(url, f"the file arrived but could not be checked ({e}); it is kept in '{part}' "
                                  "and checked again next time") from None


def _prepare(target: Path) -> None:
    """``OutputError`` unless a file can be written at ``target`` (its folder is made if missing)."""
    try:
        kind = path_kind(target)
        if kind not in ("file", "missing"):
            raise OutputError.about(target, f"is a {kind}, not a file: name the file to save the weights as")
        folder = target.parent
        folder_kind = path_kind(folder)
        if folder_kind == "missing":
            folder.mkdir(parents=True, exist_ok=True)
        elif folder_kind != "folder":
            raise OutputError.about(target, f"cannot be written: '{folder}' is a {folder_kind}, not a folder")
    except OSError as e:
        raise OutputError.about(target, f"cannot be written: its folder cannot be made ({e.strerror or e})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError.about(target, f"cannot be written: no permission to write in '{folder}'")


class _Complete(Exception):
    """The server says the partial file is the whole file already (an earlier run stopped before its check)."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.total = total


def _transfer(url: str, part: Path, progress: Progress | None, cancel: Cancel | None, timeout: float,
              allow_restart: bool = True) -> tuple[int, int]:
    """One request: append what is missing to ``part``; (the file's full size, the byte this request began at)."""
    offset = file_size(part)
    if cancel is not None and cancel():
        raise Cancelled("download cancelled before its request was sent")
    try:
        response = _request(url, offset, timeout, allow_restart)
    except _Complete as complete:
        return complete.total, offset
    with response:
        mode, done, total = _answer(url, response, offset, allow_restart)
        _check_space(part, None if total is None else total - done)
        first = done
        try:
            out = open(part, mode)  # closed by the with below, also on errors
        except OSError as e:
            raise OutputError.about(part, f"cannot be written ({e.strerror or e})") from None
        with out:
            done = _receive(response, out, part, done, total, first, progress, cancel, timeout)
    if total is not None and done < total:
        raise _Broken("the server closed the connection early", done, total, first)
    if total is not None and done > total:
        part.unlink(missing_ok=True)
        raise DownloadError.about(url, f"the server sent {done} bytes, more than the {total} it announced; "
                                  "the download was removed")
    return (done if total is None else total), first


def _request(url: str, offset: int, timeout: float, allow_restart: bool) -> http.client.HTTPResponse:
    """The answer to a request for ``url`` from byte ``offset``; ``DownloadError`` saying why there is none."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    host = urllib.parse.urlsplit(url).netloc
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout,
                                      context=_ssl_context() if url.lower().startswith("https") else None)
    except urllib.error.HTTPError as e:
        with e:
            if e.code == 416 and offset:
                total = _content_range(e.headers.get("Content-Range"))[2]
                if total == offset:
                    raise _Complete(total) from None
                if allow_restart:
                    raise _Restart from None
            raise DownloadError.about(url, f"the server refused it (HTTP {e.code} {e.reason})") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, TimeoutError):
            raise DownloadError.about(url, f"no answer from {host} within {timeout:g} s") from None
        text = getattr(reason, "strerror", None) or str(reason)
        raise DownloadError.about(url, f"cannot reach {host} ({text}); check the address and the network "
                                  "connection") from None
    except TimeoutError:
        raise DownloadError.about(url, f"no answer from {host} within {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise DownloadError.about(url, f"cannot be fetched from {host} ({e})") from None


def _answer(url: str, response: http.client.HTTPResponse, offset: int,
            allow_restart: bool) -> tuple[str, int, int | None]:
    """How to take the answer: (file mode, bytes already there, the file's size if announced)."""
    if response.status == 206:
        start, _, total = _content_range(response.headers.get("Content-Range"))
        if start != offset:
            if not allow_restart:
                raise DownloadError.about(url, f"the server sent bytes from {start} when asked for {offset}")
            raise _Restart
        return "ab", offset, total
    if response.status == 200:  # a full answer (no Range asked, or the server ignores it): start over
        length = response.headers.get("Content-Length")
        return "wb", 0, int(length) if length and length.isdigit() else None
    raise DownloadError.about(url, f"the server answered HTTP {response.status} {response.reason}, not the file")


def _receive(response: http.client.HTTPResponse, out: IO[bytes], part: Path, done: int, total: int | None,
             first: int, progress: Progress | None, cancel: Cancel | None, timeout: float) -> int:
    """The body into ``out`` as it arrives (a stall loses nothing); the bytes ``part`` holds then."""
    if progress is not None:
        progress("download", done, total)
    while True:
        if cancel is not None and cancel():
            raise Cancelled(f"download cancelled: {size_text(done)} of {size_text(total)} kept in '{part}'; "
                            "download again to resume")
        try:
            block = response.read1(CHUNK_BYTES)
        except TimeoutError:
            raise _Broken(f"no data for {timeout:g} s", done, total, first) from None
        except (OSError, http.client.HTTPException) as e:
            raise _Broken(str(e) or type(e).__name__, done, total, first) from None
        if not block:
            return done
        try:
            out.write(block)
        except OSError as e:
            raise OutputError.about(part, f"cannot be written ({e.strerror or e}); what arrived so far is kept "
                                    "for resuming") from None
        done += len(block)
        if progress is not None:
            progress("download", done, total)


def _ssl_context() -> ssl.SSLContext:
    """The system's certificate authorities, plus certifi's where it is installed (some bundled Pythons
    find no system store)."""
    context = ssl.create_default_context()
    try:
        import certifi  # type: ignore[import-not-found, unused-ignore]

        context.load_verify_locations(certifi.where())
    except (ImportError, OSError):
        pass
    return context


def _content_range(header: str | None) -> tuple[int | None, int | None, int | None]:
    """(first, last, total) of ``bytes 0-99/1000`` or ``bytes */1000``; None where absent."""
    unit, _, spec = (header or "").strip().partition(" ")
    if unit != "bytes":
        return None, None, None
    span, _, total = spec.partition("/")
    first, _, last = span.partition("-")

    def number(text: str) -> int | None:
        return int(text) if text.strip().isdigit() else None

    return number(first), number(last), number(total)


def _check_space(part: Path, needed: int | None) -> None:
    if needed is None:
        return
    try:
        free = shutil.disk_usage(part.parent).free
    except OSError:
        return
    if needed > free:
        raise OutputError.about(part.parent, f"has {size_text(free)} free, and the download needs {size_text(needed)} "
                                "more: free some space or choose another place", subject="folder")


def _sleep(seconds: float, cancel: Cancel | None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cancel is not None and cancel():
            return
        time.sleep(min(0.05, max(end - time.monotonic(), 0)))

