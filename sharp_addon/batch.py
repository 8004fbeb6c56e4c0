"""Batch conversion without Blender: which photos, in which order, under which names, written how.

No bpy, no torch. ``predict`` (``cli.py``) uses it, and so does the Blender layer's scene writer.

- ``list_images``: the photos named by files, folders (searched recursively) and glob patterns, in
  one order that is the same on every machine: sorted by their POSIX-style path relative to the
  deepest folder common to all inputs, case-sensitively (plain code-point order), duplicates (the
  same file reached twice) removed. ``--range A-B`` (0-based, inclusive) indexes this list, so a
  render farm can split one batch into chunks without listing the folder itself.
- ``output_names``: the image's stem, or, where two images share one (case-insensitively, as
  macOS and Windows file systems see names), their relative path with ``/`` as ``__``; decided on
  the whole list, so every shard of a batch gives an image the same name.
- every output is written through ``files.atomic_output``: a finished file appears only under its
  final name; until then it lives in a private temporary folder ``.sharp-XXXXXXXX.tmp`` that never
  looks like a result.
- ``record_failures``: the images a run could not convert, listed in one file written whole
  (``predict --failures-file``), so a farm task can report them and still succeed.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ImageError, OutputError, SharpError
from .files import atomic_output, path_kind
from .image import IMAGE_SUFFIXES

_GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Image:
    """One photo of a batch: its path and its key (POSIX path relative to the inputs' common folder)."""

    path: Path
    key: str


def list_images(inputs: Sequence[str | os.PathLike[str]], exclude: Path | None = None) -> list[Image]:
    """The photos ``inputs`` name, in the batch's stable order (see the module docstring).

    A file is taken whatever its suffix (reading it says whether it is a photo); folders give their
    image files (by suffix, any case) at any depth, skipping hidden entries and the folder
    ``exclude`` (the output folder); a glob pattern (``*``, ``?``, ``[``; ``**`` for any depth)
    gives what it matches. Raises ``ImageError`` naming an input that is missing, matches nothing,
    or is a folder without images.
    """
    found: list[tuple[Path, Path]] = []  # (file, the folder it was found from)
    skip = None if exclude is None else _absolute(exclude)
    for given in inputs:
        text = os.fspath(given)
        try:
            kind = path_kind(text)
            if kind == "missing" and _GLOB_CHARACTERS.search(text):
                found += _glob(text, skip)
            elif kind == "file":
                path = _absolute(Path(text))
                found.append((path, path.parent))
            elif kind == "folder":
                found += _folder(Path(text), skip)
            elif kind == "missing":
                raise ImageError.about(text, "no such file or folder")
            else:
                raise ImageError.about(text, f"is a {kind}, not an image file or a folder of images")
        except OSError as e:
            raise ImageError.about(text, f"cannot be read ({e.strerror or e})") from None
    if not found:
        return []
    roots = [str(root) for _, root in found]
    try:
        common = Path(os.path.commonpath(roots))
    except ValueError:  # different drives (Windows): no common folder; absolute paths then
        common = None
    images: list[Image] = []
    seen: set[str] = set()
    keyed = sorted((_key(path, common), path) for path, _ in found)
    for key, path in keyed:
        identity = os.path.realpath(path)
        if identity in seen:
            continue
        seen.add(identity)
        images.append(Image(path, key))
    return images


def _absolute(path: Path) -> Path:
    """Absolute without resolving links (a linked folder keeps the name the user sees)."""
    return Path(os.path.abspath(path))


def _key(path: Path, common: Path | None) -> str:
    return (path.relative_to(common) if common is not None else path).as_posix()


def _folder(folder: Path, exclude: Path | None) -> list[tuple[Path, Path]]:
    root = _absolute(folder)
    entries = 0
    files: list[tuple[Path, Path]] = []
    for current, dirs, names in os.walk(root, onerror=_raise):
        here = Path(current)
        entries += len(dirs) + len(names)
        dirs[:] = [d for d in dirs if not d.startswith(".") and here / d != exclude]
        for name in names:
            path = here / name
            if not name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES and path_kind(path) == "file":
                files.append((path, root))
    if not entries:
        raise ImageError.about(folder, "is an empty folder; give an image or a folder of images")
    if not files:
        raise ImageError.about(folder, f"is a folder without images ({', '.join(IMAGE_SUFFIXES)}); it holds "
                               f"{entries} other entries")
    return files


def _raise(error: OSError) -> None:
    raise error


def _glob(pattern: str, exclude: Path | None) -> list[tuple[Path, Path]]:
    """What a glob pattern matches: files as they are, folders searched like a folder input."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if _GLOB_CHARACTERS.search(part)), len(parts))
    base = _absolute(Path(*parts[:fixed])) if fixed else _absolute(Path("."))
    found: list[tuple[Path, Path]] = []
    for match in sorted(glob.glob(pattern, recursive=True)):
        path = _absolute(Path(match))
        kind = path_kind(path)
        if kind == "file":
            found.append((path, base))
        elif kind == "folder" and path != exclude:
            found += [(file, base) for file, _ in _folder(path, exclude)]
    if not found:
        raise ImageError.about(pattern, "matches no files")
    return found


# ---- ranges and names ----------------------------------------------------------------------------


def parse_range(text: str) -> tuple[int, int]:
    """``"A-B"`` (or ``"A"``) as (A, B), 0-based and inclusive; ``ValueError`` with the reason."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not match:
        raise ValueError(f"must be A-B (0-based image indices, inclusive) or A; got '{text}'")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise ValueError(f"must run upwards (A <= B); got '{text}'")
    return first, last


def select_range(count: int, first: int, last: int) -> range:
    """The indices of ``range`` within a batch of ``count`` photos (the end clipped to the batch).

    Raises ``SharpError`` when the range starts past the last photo: the job was made for more
    photos than the inputs hold.
    """
    if first >= count:
        raise SharpError(f"--range {first}-{last} starts past the last of the {count} images (0-{count - 1}); "
                         "the batch was split for more images than its inputs hold")
    return range(first, min(last, count - 1) + 1)


def output_names(images: Sequence[Image]) -> list[str]:
    """One output name (no suffix) per image, unique case-insensitively; depends only on the whole list."""
    levels = [0] * len(images)

    def name(i: int) -> str:
        key = images[i].key
        parts = key.split("/")
        stem = Path(parts[-1]).stem
        if levels[i] == 0:
            return stem
        if levels[i] == 1:
            return "__".join([*parts[:-1], stem])
        if levels[i] == 2:  # same folder and stem, other suffix: keep the suffix
            return "__".join([*parts[:-1], parts[-1].replace(".", "_")])
        return "__".join([*parts[:-1], parts[-1].replace(".", "_")]) + f"__{i}"

    while True:
        names = [name(i) for i in range(len(images))]
        groups: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            groups.setdefault(n.casefold(), []).append(i)
        clashing = [i for group in groups.values() if len(group) > 1 for i in group if levels[i] < 3]
        if not clashing:
            return names
        for i in clashing:
            levels[i] += 1


# ---- images that failed -------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """An image of the batch that could not be converted: its index in the sorted list, and why."""

    index: int
    image: Image
    message: str


FAILURES_HEADER = "index\tphoto\terror"


def record_failures(path: Path, failures: Sequence[Failure]) -> bool:
    """Make ``path`` list ``failures`` (``--failures-file``); whether it now exists.

    One line per image, tab-separated: index in the sorted list, path, error (on one line). The
    file is written whole (``atomic_output``), so a farm task killed while writing it leaves the
    previous list, never half of one; with no failures an earlier list there is removed, since its
    images have now been converted. Raises ``OutputError`` when it cannot be written or removed.
    """
    try:
        if not failures:
            path.unlink(missing_ok=True)
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError.about(path, f"cannot be {'removed' if not failures else 'written'} "
                                f"({e.strerror or e})") from None
    rows = [FAILURES_HEADER] + [f"{f.index}\t{_one_line(str(f.image.path))}\t{_one_line(f.message)}"
                                for f in failures]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return True


def _one_line(text: str) -> str:
    """``text`` as one field of a tab-separated line: tabs and line breaks become spaces."""
    return re.sub(r"[\t\r\n]+", " ", text)
