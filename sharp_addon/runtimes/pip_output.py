"""What pip's output says about an install in progress: stage, bytes, the file being fetched.

No bpy. pip prints no total in advance; ``PipProgress`` reads its lines ("Collecting ...",
"Downloading x.whl (700 MB)", the raw progress lines of ``--progress-bar raw``, "Installing
collected packages") into one fraction for a progress bar that never goes back.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

SIZE_UNITS = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
_DOWNLOADING = re.compile(r"^\s*Downloading (?P<what>\S+)(?:\s+\((?P<size>[\d.]+)\s*(?P<unit>bytes|kB|MB|GB)\))?")
_RAW = re.compile(r"^\s*Progress (?P<done>\d+) of (?P<total>\d+)\s*$")
_COLLECTING = re.compile(r"^\s*Collecting (?P<what>\S+)")
STAGES = {"starting": (0.0, 0.0), "resolving": (0.0, 0.05), "downloading": (0.05, 0.9),
          "installing": (0.9, 0.97), "checking": (0.97, 1.0), "done": (1.0, 1.0)}


@dataclass
class PipProgress:
    """What pip's output lines say about an install: stage, bytes, the file being fetched."""

    expected_bytes: int = 0  # what the whole download is thought to be (pip never says in advance)
    stage: str = "starting"
    file: str = ""
    file_bytes: int = 0  # size of the file being downloaded (0: unknown)
    file_done: int = 0
    finished_bytes: int = 0  # files completely downloaded
    announced_bytes: int = 0  # sizes of every file pip started
    files: int = 0
    packages: int = 0
    errors: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)  # the last lines, for messages
    _floor: float = 0.0

    def feed(self, line: str) -> bool:
        """Take in one line of pip's output; True when the progress changed."""
        self._floor = self.fraction  # the bar never goes back, even when pip announces more to fetch
        return self._feed(line)

    def _feed(self, line: str) -> bool:
        line = line.rstrip("\r\n")
        if not line.strip():
            return False
        raw = _RAW.match(line)
        if raw:
            self.file_done = int(raw["done"])
            self.file_bytes = max(self.file_bytes, int(raw["total"]))
            return True
        self.tail = [*self.tail[-19:], line]
        if line.startswith("ERROR:") or (self.errors and line.startswith(" ")):
            self.errors.append(line.removeprefix("ERROR:").strip())
            return False
        downloading = _DOWNLOADING.match(line)
        if downloading:
            self._file_complete()
            self.stage = "downloading"
            self.file = urllib.parse.unquote(downloading["what"].rsplit("/", 1)[-1])
            size = int(float(downloading["size"]) * SIZE_UNITS[downloading["unit"]]) if downloading["size"] else 0
            self.file_bytes, self.file_done = size, 0
            self.announced_bytes += size
            self.files += 1
            return True
        collecting = _COLLECTING.match(line)
        if collecting:
            self.packages += 1
            if self.stage == "starting":
                self.stage = "resolving"
            if self.stage == "resolving":
                self.file = collecting["what"]
            return True
        if line.startswith("Installing collected packages"):
            self._file_complete()
            self.stage = "installing"
            self.file = ""
            return True
        return False

    def _file_complete(self) -> None:
        if self.stage == "downloading":
            self.finished_bytes += max(self.file_bytes, self.file_done)
            self.file_bytes = self.file_done = 0

    @property
    def downloaded(self) -> int:
        return self.finished_bytes + self.file_done

    @property
    def fraction(self) -> float:
        """0..1 over the whole install (downloading is most of it)."""
        start, end = STAGES.get(self.stage, (0.0, 0.0))
        if self.stage == "downloading":
            total = max(self.expected_bytes, self.announced_bytes, 1)
            start += (end - start) * min(self.downloaded / total, 1.0)
        return max(start, self._floor)

    def text(self) -> str:
        """One line for the status bar."""
        if self.stage == "downloading":
            total = max(self.expected_bytes, self.announced_bytes)
            of = f"of about {total / 1e9:.1f} GB" if self.expected_bytes else "so far"
            return f"downloading {self.file} ({self.downloaded / 1e9:.2f} GB {of})"
        if self.stage == "resolving":
            return f"finding packages ({self.file})"
        if self.stage == "installing":
            return f"installing {self.packages} packages"
        return self.stage

