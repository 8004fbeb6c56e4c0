"""``python -m sharp_addon download`` (also ``blender -c sharp download``): fetch, resume, check, install.

No bpy. Prints a progress line for people (``--progress text``), one JSON event per line for
programs (``json``: what ``process.DownloadProcess`` follows) or nothing. Before the first
request it needs the user's acceptance of the weights' licence (``--accept-licence``, or the
host's rule: Blender's preferences remember it), and a host may forbid the network altogether
(Blender with *Allow Online Access* off): ``set_host_rules``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .. import dependencies
from ..errors import Cancelled, CheckpointError, DownloadError, SharpError, to_event
from ..files import path_kind, size_text
from .checks import Expected, Installed, WeightsCheck, expected_for, file_size, torch_weights_check, verify_file
from .http_fetch import TIMEOUT_SECONDS, fetch, part_path


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


@dataclass(frozen=True)
class HostRules:
    """What a host decides for the command: why no request may be made (Blender with Allow Online Access
    off: ``offline_reason()`` returns the message), and whether the user accepted the licence there."""

    offline_reason: Callable[[], str | None] = lambda: None
    licence_accepted: Callable[[], bool] = lambda: False


_host = HostRules()


def set_host_rules(rules: HostRules | None) -> None:
    """Blender's layer sets its rules for ``blender -c sharp download`` (None: none)."""
    global _host
    _host = rules or HostRules()


def licence_refusal() -> str:
    """The message for a download the user has not accepted the licence of yet."""
    return (f"{dependencies.LICENCE_NOTICE}. Read it at {dependencies.LICENCE_URL}; to accept it and download, "
            "run the command again with --accept-licence")


def command(url: str, to: str | None = None, source: str | None = None, progress: str = "text",
            timeout: float = TIMEOUT_SECONDS, expected: Expected | None = None,
            check_weights: WeightsCheck | None = torch_weights_check, accept_licence: bool = False) -> int:
    """``sharp download``: fetch, resume, check and install (or, with ``source``, only check a file).
    ``accept_licence``: the user accepts the weights' licence, which a request needs (a check does not).

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
        refusal = _host.offline_reason()
        if refusal:
            raise DownloadError(refusal)
        if not (accept_licence or _host.licence_accepted()):
            raise DownloadError(licence_refusal())
        reporter.say(f"{dependencies.LICENCE_NOTICE} ({dependencies.LICENCE_URL}); accepted")
        part = part_path(target)
        resume = f" (resuming after {size_text(file_size(part))})" if file_size(part) else ""
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
        "every key and shape check out. With --from, check a file downloaded elsewhere the same way. "
        f"{dependencies.LICENCE_NOTICE} ({dependencies.LICENCE_URL}): a download needs --accept-licence.")
    p.add_argument("--to", metavar="PATH", help=f"the file to write (default: ${dependencies.ENV_MODELS}/"
                   f"{dependencies.CHECKPOINT_NAME} when that is set, else the torch hub cache)")
    p.add_argument("--url", default=dependencies.CHECKPOINT_URL, help="where to download from (default: Apple's)")
    p.add_argument("--accept-licence", "--accept-license", dest="accept_licence", action="store_true",
                   help=f"accept the weights' research-only licence ({dependencies.LICENCE_URL}); needed to download")
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
                   expected=expected, accept_licence=args.accept_licence)


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

