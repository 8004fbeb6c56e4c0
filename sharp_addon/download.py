"""Getting the SHARP weights over HTTP(S): resumable, cancellable, and checked before anything uses them.

No bpy; torch only inside ``torch_weights_check`` (where it is installed). Three pieces:

- ``fetch(url, target)`` downloads with urllib into ``<target>.part``: progress callback, cancel
  callback, a socket timeout, and *resume*: a ``.part`` left by an interrupted run is continued
  with ``Range: bytes=N-`` (206 appends; a 200 that ignores the range starts over; 416 means the
  part is already complete, or does not fit the server's file and is started over). A connection
  that breaks after making progress is resumed automatically ``retries`` times.
- ``verify(path, expected)`` is the one check for a downloaded file and a file the user picks:
  the size (what the server announced; at least / exactly what is expected), the SHA-256 when one
  is given, every CRC-32 of the checkpoint's zip archive (this is what finds corrupted bytes:
  torch's loader reads only the index of a memory-mapped file), then every key and shape
  (``api.validate_checkpoint``, when torch is installed here). Only a file that passes is renamed
  to its final name (atomic ``os.replace``); a download that fails it is removed, and says so.
- ``DownloadProcess`` runs ``python -m sharp_addon download ... --progress json`` in a child
  process and follows its JSON lines by polling, so a host (Blender) never blocks and a cancel is
  a kill that works at once; the ``.part`` stays for resuming.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import http.client
import json
import math
import os
import queue
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from . import dependencies, worker
from .errors import Cancelled, CheckpointError, DownloadError, OutputError, SharpError, from_event, to_event
from .files import path_kind

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 30.0  # a connection that sends nothing for this long is given up (and resumed later)
RETRIES = 3  # automatic resumptions of a connection that broke after making progress
RETRY_DELAY_SECONDS = 1.0  # times the attempt number
USER_AGENT = "sharp-from-image (Blender extension; Python urllib)"

Progress = Callable[[str, int, int | None], None]  # (stage, bytes done, bytes in all or None)
Cancel = Callable[[], bool]
WeightsCheck = Callable[[Path], str | None]  # a summary, None when it could not run; CheckpointError if bad


@dataclass(frozen=True)
class Expected:
    """What a checkpoint file must be before it is used: at least ``min_bytes``, and exactly ``size``
    bytes and this ``sha256`` (hex) where they are known."""

    min_bytes: int = 0
    size: int | None = None
    sha256: str | None = None


OFFICIAL = Expected(min_bytes=dependencies.CHECKPOINT_BYTES_MIN)  # Apple publishes no size or hash to pin


def expected_for(path: str | os.PathLike[str]) -> Expected:
    """The official file's expectations for a file of its name, none for another name."""
    return OFFICIAL if Path(path).name == dependencies.CHECKPOINT_NAME else Expected()


@dataclass(frozen=True)
class Installed:
    """A checkpoint file that passed ``verify``."""

    path: Path
    size: int
    summary: str  # what the check found, one line
    resumed_from: int = 0  # bytes an earlier, interrupted attempt had already fetched
    downloaded: bool = True  # False: the file was already there (or was only checked)


def torch_weights_check(path: Path) -> str | None:
    """``api.validate_checkpoint`` (every key and shape) where torch is installed, else None."""
    if not dependencies.torch_status().ok:
        return None
    from .api import validate_checkpoint

    return validate_checkpoint(path)


def part_path(target: str | os.PathLike[str]) -> Path:
    """Where a download of ``target`` collects its bytes until it is verified."""
    target = Path(target)
    return target.with_name(target.name + ".part")


def size_text(n: int | None) -> str:
    if n is None:
        return "an unknown size"
    if n >= 100_000_000:
        return f"{n / 1e9:.2f} GB"
    if n >= 100_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n} bytes"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ---- downloading ----------------------------------------------------------------------------------


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
    expected = expected or expected_for(target)
    resumed_from: int | None = None  # where the first answered request started
    attempt, allow_restart = 0, True
    try:
        while True:
            try:
                total, first = _transfer(url, part, progress, cancel, timeout, allow_restart)
                resumed_from = first if resumed_from is None else resumed_from
                break
            except _Restart:
                part.unlink(missing_ok=True)
                resumed_from, allow_restart = 0, False
            except _Broken as broken:
                resumed_from = broken.first if resumed_from is None else resumed_from
                kept = _size(part)
                if attempt >= retries or not broken.progressed:
                    raise DownloadError.about(
                        url, f"the connection broke after {size_text(broken.done)} of {size_text(broken.total)} "
                        f"({broken.reason}); {size_text(kept)} are kept in '{part}': download again to resume"
                    ) from None
                attempt += 1
                _sleep(RETRY_DELAY_SECONDS * attempt, cancel)
    except (Cancelled, KeyboardInterrupt):
        if part.exists() and _size(part) == 0:
            part.unlink(missing_ok=True)
        raise
    try:
        summary = _verify(part, expected, total, progress, cancel, check_weights)
    except _Rejected as e:
        part.unlink(missing_ok=True)
        raise DownloadError.about(url, f"the file received {e.problem}; it was removed and nothing was "
                                  "installed: download it again") from None
    except CheckpointError as e:
        part.unlink(missing_ok=True)
        raise DownloadError.about(url, f"the file received is not a usable SHARP checkpoint ({_problem_of(e)}); "
                                  "it was removed and nothing was installed") from None
    except Cancelled:
        raise Cancelled(f"cancelled while checking the download: the complete file is kept in '{part}' and is "
                        "checked again (not downloaded again) next time") from None
    except SharpError as e:  # the check itself could not run (not the file's fault): keep the file
        raise DownloadError.about(url, f"the file arrived but could not be checked ({e}); it is kept in '{part}' "
                                  "and checked again next time") from None
    try:
        os.replace(part, target)
    except OSError as e:
        raise OutputError.about(target, f"cannot be written ({e.strerror or e}); the checked download is kept in "
                                f"'{part}'") from None
    return Installed(target, _size(target), summary, resumed_from=resumed_from or 0)


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


def _transfer(url: str, part: Path, progress: Progress | None, cancel: Cancel | None, timeout: float,
              allow_restart: bool = True) -> tuple[int, int]:
    """One request: append what is missing to ``part``; (the file's full size, the byte this request began at)."""
    offset = _size(part)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    host = urllib.parse.urlsplit(url).netloc
    if cancel is not None and cancel():
        raise Cancelled("download cancelled before its request was sent")
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout,
                                          context=_ssl_context() if url.lower().startswith("https") else None)
    except urllib.error.HTTPError as e:
        with e:
            if e.code == 416 and offset:
                total = _content_range(e.headers.get("Content-Range"))[2]
                if total == offset:
                    return total, offset  # complete already: an earlier run stopped before its check
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
    with response:
        if response.status == 206:
            start, _, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                if not allow_restart:
                    raise DownloadError.about(url, f"the server sent bytes from {start} when asked for {offset}")
                raise _Restart
            mode, done = "ab", offset
        elif response.status == 200:  # a full answer (no Range asked, or the server ignores it): start over
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode, done = "wb", 0
        else:
            raise DownloadError.about(url, f"the server answered HTTP {response.status} {response.reason}, "
                                      "not the file")
        _check_space(part, None if total is None else total - done)
        first = done
        try:
            out = open(part, mode)  # closed by the with below, also on errors
        except OSError as e:
            raise OutputError.about(part, f"cannot be written ({e.strerror or e})") from None
        with out:
            if progress is not None:
                progress("download", done, total)
            while True:
                if cancel is not None and cancel():
                    raise Cancelled(f"download cancelled: {size_text(done)} of {size_text(total)} kept in '{part}'; "
                                    "download again to resume")
                try:
                    block = response.read1(CHUNK_BYTES)  # what has arrived: a stall loses nothing
                except TimeoutError:
                    raise _Broken(f"no data for {timeout:g} s", done, total, first) from None
                except (OSError, http.client.HTTPException) as e:
                    raise _Broken(str(e) or type(e).__name__, done, total, first) from None
                if not block:
                    break
                try:
                    out.write(block)
                except OSError as e:
                    raise OutputError.about(part, f"cannot be written ({e.strerror or e}); what arrived so far is "
                                            "kept for resuming") from None
                done += len(block)
                if progress is not None:
                    progress("download", done, total)
    if total is not None and done < total:
        raise _Broken("the server closed the connection early", done, total, first)
    if total is not None and done > total:
        part.unlink(missing_ok=True)
        raise DownloadError.about(url, f"the server sent {done} bytes, more than the {total} it announced; "
                                  "the download was removed")
    return (done if total is None else total), first


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


# ---- checking -------------------------------------------------------------------------------------


class _Rejected(Exception):
    """A file that fails a check: ``problem`` reads after "the file received" or "checkpoint '<path>':"."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def verify(path: str | os.PathLike[str], expected: Expected | None = None, *, total: int | None = None,
           progress: Progress | None = None, cancel: Cancel | None = None,
           check_weights: WeightsCheck | None = torch_weights_check) -> str:
    """One line saying what was checked, or ``CheckpointError`` naming ``path`` and what is wrong.

    ``total``: the size the server announced. ``expected`` defaults to ``expected_for(path)``. The
    checks, cheapest first: size, SHA-256 (when expected), every CRC-32 of the zip archive torch
    writes, then ``check_weights`` (every key and shape; None: not checked).
    """
    path = Path(path).expanduser()
    try:
        return _verify(path, expected or expected_for(path), total, progress, cancel, check_weights)
    except _Rejected as e:
        raise CheckpointError.about(path, e.problem) from None


def verify_file(path: str | os.PathLike[str], expected: Expected | None = None, *,
                progress: Progress | None = None, cancel: Cancel | None = None,
                check_weights: WeightsCheck | None = torch_weights_check) -> Installed:
    """``verify`` for a file downloaded elsewhere (the user picked it): its ``Installed`` record."""
    path = Path(path).expanduser()
    kind = path_kind(path)
    if kind == "missing":
        raise CheckpointError.about(path, "no such file")
    if kind != "file":
        raise CheckpointError.about(path, f"is a {kind}, not a checkpoint file")
    summary = verify(path, expected, progress=progress, cancel=cancel, check_weights=check_weights)
    return Installed(path, _size(path), summary, downloaded=False)


def _verify(path: Path, expected: Expected, total: int | None, progress: Progress | None, cancel: Cancel | None,
            check_weights: WeightsCheck | None) -> str:
    size = _size(path)
    if total is not None and size != total:
        raise _Rejected(f"holds {size} bytes, not the {total} the server announced")
    if expected.size is not None and size != expected.size:
        raise _Rejected(f"holds {size} bytes, not the {expected.size} expected")
    if size < expected.min_bytes:
        raise _Rejected(f"is too small to be the official checkpoint ({size_text(size)}; it has at least "
                        f"{size_text(expected.min_bytes)}): cut short, or another file")
    if expected.sha256:
        digest = _sha256(path, progress, cancel)
        if digest != expected.sha256.lower():
            raise _Rejected(f"is corrupted: its SHA-256 is {digest}, not the expected {expected.sha256.lower()}")
    entries = _check_archive(path, progress, cancel)
    weights = None
    if check_weights is not None:
        if progress is not None:
            progress("check", 0, None)
        weights = check_weights(path)
    checked = f"{size_text(size)}, every checksum of its {entries} archive entries intact"
    if weights is None:
        return f"{checked}; keys and shapes not checked here (PyTorch is not installed)"
    return f"{weights}; {checked}"


def _sha256(path: Path, progress: Progress | None, cancel: Cancel | None) -> str:
    digest, done, total = hashlib.sha256(), 0, _size(path)
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            digest.update(block)
            done += len(block)
            _tick("hash", done, total, progress, cancel)
    return digest.hexdigest()


def _check_archive(path: Path, progress: Progress | None, cancel: Cancel | None) -> int:
    """Read every entry of the checkpoint's zip archive (zipfile checks each CRC-32); the entry count."""
    try:
        if not zipfile.is_zipfile(path):
            raise _Rejected("is not a PyTorch checkpoint archive (a zip file): it is cut short, damaged, or "
                            "another kind of file")
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if not any(i.filename == "data.pkl" or i.filename.endswith("/data.pkl") for i in infos):
                raise _Rejected("is a zip archive but not a PyTorch checkpoint (it has no data.pkl)")
            total, done = sum(i.file_size for i in infos), 0
            for info in infos:
                with archive.open(info) as member:
                    while block := member.read(CHUNK_BYTES):
                        done += len(block)
                        _tick("verify", done, total, progress, cancel)
    except zipfile.BadZipFile as e:
        text = str(e)
        if text.startswith("Bad CRC-32 for file "):
            raise _Rejected(f"is corrupted: its archive entry {text.removeprefix('Bad CRC-32 for file ')} fails its "
                            "CRC-32 checksum") from None
        raise _Rejected(f"is corrupted ({text})") from None
    except (OSError, EOFError, zlib.error, NotImplementedError, ValueError) as e:
        raise _Rejected(f"cannot be read as an archive ({e})") from None
    return len(infos)


def _tick(stage: str, done: int, total: int, progress: Progress | None, cancel: Cancel | None) -> None:
    if progress is not None:
        progress(stage, done, total)
    if cancel is not None and cancel():
        raise Cancelled("cancelled while checking the file")


def _problem_of(error: SharpError) -> str:
    """An error's message without its "checkpoint '<path>': " prefix (when the path is a temporary one)."""
    text = str(error)
    prefix = f"{CheckpointError.subject} '{error.path}': " if error.path else ""
    return text.removeprefix(prefix) if prefix else text


# ---- the command: python -m sharp_addon download ------------------------------------------------------


class Reporter:
    """What the command prints: ``text`` (a progress line), ``json`` (one event per line) or ``none``."""

    def __init__(self, mode: str = "text", stream: IO[str] | None = None, interval: float = 0.1) -> None:
        self.mode, self.stream, self.interval = mode, stream or sys.stdout, interval
        self._last, self._last_fraction, self._stage = 0.0, -1.0, ""
        self._started = time.monotonic()
        self._tty = self.mode == "text" and hasattr(self.stream, "isatty") and self.stream.isatty()

    def send(self, **event: Any) -> None:
        self.stream.write(json.dumps(event) + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        if self.mode == "text":
            if self._tty and self._stage:
                self.stream.write("\n")
            self._stage = ""
            print(text, file=self.stream, flush=True)

    def progress(self, stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if stage == self._stage and not final and now - self._last < self.interval:
            return
        if self.mode == "json":
            self._last, self._stage = now, stage
            self.send(event="progress", stage=stage, done=done, total=total)
        elif self.mode == "text":
            self._text_progress(stage, done, total, now, final)

    def _text_progress(self, stage: str, done: int, total: int | None, now: float, final: bool) -> None:
        fraction = done / total if total else 0.0
        if not self._tty and stage == self._stage and not final and fraction - self._last_fraction < 0.1 \
                and now - self._last < 15:
            return  # in a log: a line per 10 % (or 15 s), not per tick
        if stage != self._stage:
            self._started = now
        words = {"download": "downloading", "hash": "hashing", "verify": "checking checksums",
                 "check": "checking keys and shapes"}.get(stage, stage)
        line = f"  {words}: {size_text(done)}" + (f" of {size_text(total)} ({100 * fraction:.0f}%)" if total else "")
        if stage == "download" and now > self._started + 1:
            line += f", {size_text(int(done / max(now - self._started, 1e-3)))}/s".replace("bytes/s", "B/s")
        if stage == "check":
            line = f"  {words} (loads PyTorch; seconds)"
        self._last, self._last_fraction, self._stage = now, fraction, stage
        if self._tty:
            self.stream.write("\r" + line.ljust(72) + ("\n" if final else ""))
            self.stream.flush()
            if final:
                self._stage = ""
        else:
            print(line, file=self.stream, flush=True)

    def finished(self, installed: Installed) -> None:
        if self.mode == "json":
            self.send(event="done", path=str(installed.path), size=installed.size, summary=installed.summary,
                      resumed_from=installed.resumed_from, downloaded=installed.downloaded)
        elif installed.downloaded:
            self.say(f"installed {installed.path}: {installed.summary}")
        else:
            self.say(f"{installed.path}: {installed.summary}")

    def failed(self, error: SharpError) -> None:
        if self.mode == "json":
            self.send(event="error", **to_event(error))
        elif self._tty and self._stage:
            self.stream.write("\n")


_network_policy: Callable[[], str | None] | None = None


def set_network_policy(policy: Callable[[], str | None] | None) -> None:
    """A host's rule for the ``download`` command: ``policy()`` returns why no request may be made
    (Blender with Allow Online Access off), or None. Blender's layer sets it for ``blender -c sharp``."""
    global _network_policy
    _network_policy = policy


def command(url: str, to: str | None = None, source: str | None = None, progress: str = "text",
            timeout: float = TIMEOUT_SECONDS, expected: Expected | None = None,
            check_weights: WeightsCheck | None = torch_weights_check) -> int:
    """``sharp download``: fetch, resume, check and install (or, with ``source``, only check a file).

    Returns 0; raises ``SharpError`` (exit 1, after an ``error`` event in json mode) or KeyboardInterrupt.
    """
    reporter = Reporter(progress)
    try:
        if source:
            reporter.say(f"checking {source} ...")
            installed = verify_file(source, expected, progress=reporter.progress, check_weights=check_weights)
            reporter.finished(installed)
            return 0
        target = Path(to).expanduser() if to else dependencies.download_target()
        expected = expected or expected_for(target)
        if path_kind(target) == "file":
            try:
                installed = verify_file(target, expected, progress=reporter.progress, check_weights=check_weights)
            except CheckpointError as e:
                reporter.say(f"{e}; downloading a replacement (the file stays until one passes its check)")
            else:
                reporter.say("already installed; nothing downloaded")
                reporter.finished(installed)
                return 0
        refusal = _network_policy() if _network_policy is not None else None
        if refusal:
            raise DownloadError(refusal)
        part = part_path(target)
        resume = f" (resuming after {size_text(_size(part))})" if _size(part) else ""
        reporter.say(f"downloading {url}\n  to {target}{resume}")
        installed = fetch(url, target, expected=expected, progress=reporter.progress, timeout=timeout,
                          check_weights=check_weights)
        reporter.finished(installed)
        return 0
    except SharpError as e:
        reporter.failed(e)
        raise
    except KeyboardInterrupt:
        reporter.failed(Cancelled("download cancelled"))
        raise


def add_parser(commands: Any) -> None:
    """Add ``download`` to the command line's subcommands (``cli.build_parser``)."""
    p = commands.add_parser(
        "download", help="download the SHARP weights (resumes, checks them before use)",
        description="Download the official SHARP weights through a .part file, resuming an interrupted download, "
        "and install them under their name only once their size, every checksum and (where PyTorch is installed) "
        "every key and shape check out. With --from, check a file downloaded elsewhere the same way.")
    p.add_argument("--to", metavar="PATH", help=f"the file to write (default: ${dependencies.ENV_MODELS}/"
                   f"{dependencies.CHECKPOINT_NAME} when that is set, else the torch hub cache)")
    p.add_argument("--url", default=dependencies.CHECKPOINT_URL, help="where to download from (default: Apple's)")
    p.add_argument("--from", dest="source", metavar="FILE",
                   help="check this file (downloaded elsewhere) the same way instead; nothing is downloaded")
    p.add_argument("--progress", choices=("text", "json", "none"), default="text",
                   help="a progress line (default), JSON lines for programs, or nothing")
    p.add_argument("--timeout", type=_seconds, default=TIMEOUT_SECONDS, metavar="SECONDS",
                   help=f"give up on a connection silent for this long (default {TIMEOUT_SECONDS:g})")
    p.add_argument("--min-bytes", type=_count, metavar="N",
                   help=f"the smallest size accepted (default: {dependencies.CHECKPOINT_BYTES_MIN} for the official "
                   "file name, else 0)")
    p.add_argument("--size", type=_count, metavar="N", help="the exact size in bytes, where known")
    p.add_argument("--sha256", type=_hex_digest, metavar="HEX", help="the SHA-256 the file must have, where known")
    p.set_defaults(run=_run)


def _run(args: Any) -> int:
    expected = None
    if args.min_bytes is not None or args.size is not None or args.sha256 is not None:
        expected = Expected(min_bytes=args.min_bytes or 0, size=args.size, sha256=args.sha256)
    return command(args.url, to=args.to, source=args.source, progress=args.progress, timeout=args.timeout,
                   expected=expected)


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of bytes; got '{text}'")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds; got '{text}'")
    return value


def _hex_digest(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"must be 64 hexadecimal digits; got '{text}'")
    return value


# ---- following the command from a host that must not block (Blender) ----------------------------------

BOOT = (
    "import importlib, json, os, sys\n"
    f"sys.path[:0] = json.loads(os.environ[{worker.ENV_PATH!r}])\n"
    f"sys.exit(importlib.import_module({worker.PACKAGE_DIR.name!r} + '.cli').main(sys.argv[1:]))\n"
)


def _arguments(expected: Expected) -> list[str]:
    args = ["--min-bytes", str(expected.min_bytes)]
    if expected.size is not None:
        args += ["--size", str(expected.size)]
    if expected.sha256:
        args += ["--sha256", expected.sha256]
    return args


class DownloadProcess:
    """``sharp download ... --progress json`` in a child process, followed by ``poll`` (never blocking).

    ``cancel`` kills the child at once: what it wrote stays in the ``.part`` for the next run to
    resume (an empty one is removed). A host that exits takes its download with it.
    """

    def __init__(self, arguments: list[str], part: Path | None = None, python: str | None = None) -> None:
        self.part = part
        self.stage, self.done = "starting", 0
        self.total: int | None = None
        self.result: dict[str, Any] | None = None
        self.error: SharpError | None = None
        self.on_event: Callable[[dict[str, Any]], None] | None = None  # every event poll() takes in (tests)
        self._cancelling = False
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr = tempfile.TemporaryFile("w+", prefix="sharp-download-stderr-")
        flags: dict[str, Any] = {}
        if os.name == "nt":
            flags["creationflags"] = subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined]
        executable = python or sys.executable
        if not executable or not Path(executable).exists():
            raise SharpError("cannot start the download: this Python does not know its own interpreter")
        self._process = subprocess.Popen(
            [executable, "-c", BOOT, "download", *arguments, "--progress", "json"], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, encoding="utf-8", env=worker.worker_env(),
            **flags,
        )
        self._reader = threading.Thread(target=self._pump, daemon=True, name="sharp-download-events")
        self._reader.start()
        atexit.register(self.cancel)

    @classmethod
    def download(cls, url: str, target: str | os.PathLike[str], expected: Expected, timeout: float = TIMEOUT_SECONDS,
                 python: str | None = None) -> DownloadProcess:
        target = Path(target)
        return cls(["--url", url, "--to", str(target), "--timeout", str(timeout), *_arguments(expected)],
                   part=part_path(target), python=python)

    @classmethod
    def check(cls, source: str | os.PathLike[str], expected: Expected, python: str | None = None) -> DownloadProcess:
        return cls(["--from", str(source), *_arguments(expected)], python=python)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    @property
    def fraction(self) -> float | None:
        return min(self.done / self.total, 1.0) if self.total else None

    def poll(self) -> bool:
        """Take in what the child reported; True once it finished (``result`` or ``error`` is set)."""
        while not self.finished:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event is None:
                self._ended()
                break
            self._handle(event)
        return self.finished

    def wait(self, cancel: Cancel | None = None, interval: float = 0.05) -> dict[str, Any]:
        """Follow to the end (the synchronous path); the ``done`` event, or raises the error."""
        try:
            while not self.poll():
                if cancel is not None and cancel():
                    self.cancel()
                    break
                time.sleep(interval)
        except BaseException:  # Ctrl+C in a background Blender: the child goes too
            self.cancel()
            raise
        self._process.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        """Stop now (kill). The ``.part`` is kept for resuming, or removed when empty."""
        if self.finished:
            return
        self._cancelling = True
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join(1.0)
        self.poll()  # it may have finished just before the kill: then that is the outcome
        if not self.finished:
            self.error = Cancelled(self._cancel_message())
            self._close()

    def _cancel_message(self) -> str:
        kept = _size(self.part) if self.part is not None else 0
        if self.part is None:
            return "check cancelled"
        if kept == 0:
            self.part.unlink(missing_ok=True)
            return "download cancelled; nothing had arrived yet"
        of = f" of {size_text(self.total)}" if self.total else ""
        return f"download cancelled: {size_text(kept)}{of} kept in '{self.part}'; download again to resume"

    def _handle(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event)
        kind = event.get("event")
        if kind == "progress":
            self.stage, self.done = str(event.get("stage", "")), int(event.get("done") or 0)
            total = event.get("total")
            self.total = int(total) if total is not None else None
        elif kind == "done":
            self.result = event
            self._close()
        elif kind == "error":
            self.error = from_event(event)
            self._close()

    def _ended(self) -> None:
        code = self._process.wait()
        if self._cancelling:
            self.error = Cancelled(self._cancel_message())
            self._close()
            return
        self._stderr.seek(0)
        lines = [line for line in self._stderr.read().splitlines() if line.strip()]
        tail = f" Last output: {' | '.join(lines[-3:])}" if lines else ""
        self.error = DownloadError(f"the download process stopped unexpectedly (exit code {code}).{tail}")
        self._close()

    def _close(self) -> None:
        atexit.unregister(self.cancel)
        try:
            self._stderr.close()
        except OSError:
            pass

    def _pump(self) -> None:
        """Reader thread: the child's JSON lines into the queue (other lines are ignored); None at the end."""
        stream = self._process.stdout
        assert stream is not None
        for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("event") in ("progress", "done", "error"):
                self._events.put(event)
        self._events.put(None)
