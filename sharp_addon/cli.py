"""The one command-line front door: ``python -m sharp_addon ...`` and ``blender -c sharp ...``.

No bpy at import. ``main(argv) -> int`` never raises for user errors: a ``SharpError`` is
printed on stderr as one line ("error: ...") and gives exit status 1; bad arguments give one
such line and 2; Ctrl+C gives "cancelled" and 130.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from . import batch, camera_moves, dependencies, formats
from .api import DEVICES, PRECISIONS
from .errors import Cancelled, GaussiansError, ImageError, OutputError, PLYError, SharpError
from .files import folder_problem, path_kind
from .gaussians import Gaussians
from .ply import LAYOUTS, read_ply

OUTPUT_KINDS = ("ply", "blend", "both", *formats.NAMES[1:])  # --format: a comma-separated list of these
RENDER_SUFFIX = "_render.png"
RENDER_ENGINES = ("cycles", "exact")
MOVE_VIDEO_SUFFIX = "_move.mp4"
# builds one photo's Blender scene and writes it (blend path) and its render (PNG path), each only if
# given and each atomically, with a camera move when given (keyword ``move``, only then passed); the
# Blender layer passes it to main() (the core never imports Blender)
SceneWriter = Callable[..., None]


@dataclass(frozen=True)
class MoveRequest:
    """``--move PRESET --frames N``: the camera move added to each scene, rendered to ``video`` if given."""

    preset: str
    frames: int
    video: Path | None = None


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line, like every other error (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def _fraction(text: str) -> float:
    """An argument that must be a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1; got '{text}'")
    return value


def _frame_count(text: str) -> int:
    """A camera move's frame count: a whole number from 2."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be a whole number of frames, at least 2; got '{text}'")
    return value


def _positive(text: str) -> float:
    """An argument that must be a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number; got '{text}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sharp", description="SHARP from Image: single-photo 3D Gaussian splats."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from .convert_command import add_parsers as add_convert_parsers

    add_convert_parsers(sub, _fraction)
    _add_predict_parser(sub)

    p = sub.add_parser("check", help="say whether PyTorch and the SHARP checkpoint are present, and how SHARP "
                       "would run here (device, precision and why)")
    p.add_argument("-c", "--checkpoint", help=f"checkpoint file (default: ${dependencies.ENV_CHECKPOINT}, "
                   "then the torch hub cache)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.set_defaults(run=_check)

    from .download import add_parser as add_download_parser  # its options live beside the download code

    add_download_parser(sub)
    return parser


def _add_predict_parser(sub: Any) -> None:
    """``predict``: the batch conversion's options."""
    p = sub.add_parser("predict", help="photos to 3D Gaussians: PLY files, Blender scenes (.blend), renders",
                       description="Convert photos in one batch: the model loads once; one progress line per "
                       "image; outputs appear only when complete (written under .sharp-*.tmp names, then renamed).")
    p.add_argument("-i", "--input", required=True, nargs="+", action="extend", metavar="INPUT",
                   help="image files, folders (searched recursively) or glob patterns; sorted by their path "
                   "relative to the inputs' common folder, duplicates removed")
    p.add_argument("-o", "--output", required=True, help="folder for the outputs (created if needed)")
    p.add_argument("--format", type=_output_formats, default=("ply",), metavar="FORMATS",
                   help="what to write per photo, comma-separated: 'ply' (ml-sharp PLY, default), any other splat "
                   f"format ({', '.join(formats.NAMES[1:])}), 'blend' (a Blender scene) or 'both' (ply,blend); "
                   "e.g. --format spz,blend. 'blend' needs Blender (blender -b -c sharp predict ...)")
    p.add_argument("-c", "--checkpoint", help=f"SHARP weights (default: ${dependencies.ENV_CHECKPOINT}, "
                   "then the torch hub cache)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--focal-35mm", type=_positive, help="35 mm-equivalent focal length (default: from EXIF)")
    p.add_argument("--layout", choices=LAYOUTS, default="sharp", help="PLY layout (default: ml-sharp's)")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave images whose outputs all exist (complete files only: resumes a stopped run)")
    p.add_argument("--range", type=_index_range, metavar="A-B",
                   help="only images A to B (0-based, inclusive) of the sorted list: the same images on every "
                   "machine, for splitting a batch (see --list)")
    p.add_argument("--render", action="store_true",
                   help=f"also a render from the photo's camera, NAME{RENDER_SUFFIX} (needs --format "
                   "blend or both)")
    p.add_argument("--render-engine", choices=RENDER_ENGINES, default="cycles",
                   help="what --render renders with: cycles (the saved scene in Cycles, as F12 would) or exact "
                   "(the splats through the exact 3DGS renderer; default cycles)")
    p.add_argument("--move", choices=camera_moves.PRESETS, metavar="PRESET",
                   help=f"add a camera move to each scene ({', '.join(camera_moves.PRESETS)}), sized by the scene's "
                   f"depth; with --render it is also rendered in Cycles to NAME{MOVE_VIDEO_SUFFIX} (H.264). Needs "
                   "--format blend or both")
    p.add_argument("--frames", type=_frame_count, default=48, help="frames of the --move (default 48)")
    p.add_argument("--list", action="store_true",
                   help="print the sorted images (index, output name, path) and stop; no checkpoint needed")
    p.add_argument("--failures-file", type=Path, metavar="FILE",
                   help="list the images that failed in FILE (index, path, error; tab-separated), written whole "
                   "at the end; an earlier list there is removed when none failed (for a farm: one per --range)")
    p.add_argument("--allow-failures", action="store_true",
                   help="exit with status 0 when some images failed as long as one was converted or done "
                   "before (1 only when every image failed); without it, 0 only when none failed")
    p.set_defaults(run=_predict)


def main(argv: Sequence[str] | None = None, scene_writer: SceneWriter | None = None) -> int:
    """Run one command; the exit status. ``scene_writer``: how ``predict --format blend`` builds and
    saves a Blender scene (the Blender layer passes it in; without it that format is refused)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:  # argparse exits on --help and on bad arguments
        return int(e.code or 0)
    args.scene_writer = scene_writer
    try:
        return int(args.run(args))
    except (KeyboardInterrupt, Cancelled):
        print("cancelled", file=sys.stderr)
        return 130
    except SharpError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _output_formats(text: str) -> tuple[str, ...]:
    """``--format``: the outputs per photo, in order, without repeats ('both' is 'ply,blend')."""
    chosen: list[str] = []
    for word in (w.strip().lower() for w in text.split(",")):
        if word not in OUTPUT_KINDS:
            raise argparse.ArgumentTypeError(f"'{word}' is not one of {', '.join(OUTPUT_KINDS)}")
        chosen += [w for w in (("ply", "blend") if word == "both" else (word,)) if w not in chosen]
    return tuple(chosen)


def _index_range(text: str) -> tuple[int, int]:
    try:
        return batch.parse_range(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _predict(args: argparse.Namespace) -> int:
    wants_scene = "blend" in args.format
    if wants_scene and args.scene_writer is None:
        print("error: sharp predict: --format blend needs Blender: run 'blender -b -c sharp predict ...' with the "
              "extension installed; outside Blender only splat files are written", file=sys.stderr)
        return 2
    if args.render and not wants_scene:
        print("error: sharp predict: --render renders the Blender scene; add --format blend or --format both",
              file=sys.stderr)
        return 2
    if args.move and not wants_scene:
        print("error: sharp predict: --move animates the Blender scene's camera; add --format blend or --format "
              "both", file=sys.stderr)
        return 2
    out = Path(args.output)
    images = batch.list_images(args.input, exclude=out)
    names = batch.output_names(images)
    chosen = range(len(images)) if args.range is None else batch.select_range(len(images), *args.range)
    if args.list:
        for i in chosen:
            print(f"{i}\t{names[i]}\t{images[i].key}")
        print(f"{len(chosen)} of {len(images)} images", file=sys.stderr)
        return 0
    _check_output_folder(out)
    if args.failures_file is not None and (kind := path_kind(args.failures_file)) not in ("file", "missing"):
        raise OutputError.about(args.failures_file, f"is a {kind}, not a file; --failures-file names the file "
                                "that lists the images that failed", subject="failures file")
    checkpoint = dependencies.find_checkpoint(args.checkpoint)
    if checkpoint is None:
        raise SharpError(dependencies.checkpoint_status(None).message + ", or pass --checkpoint PATH")
    run = _Batch(args, out, checkpoint)
    lone = len(images) == 1 and args.failures_file is None  # a lone photo's error is the run's, unless listed
    for number, i in enumerate(chosen, start=1):
        run.convert(i, images[i], names[i], number, len(chosen), lone=lone)
    return run.summary(len(chosen))


class _Batch:
    """One ``predict`` run: the model (loaded on the first image that needs it), counts and times."""

    def __init__(self, args: argparse.Namespace, out: Path, checkpoint: Path) -> None:
        self.args, self.out, self.checkpoint = args, out, checkpoint
        self.predictor: Any = None
        self.converted = self.skipped = 0
        self.failures: list[batch.Failure] = []
        self.seconds = 0.0  # spent on converted images (for the ETA)
        self.loaded_at = 0.0  # when the model finished loading (not counted in the first image's time)
        self.started = time.perf_counter()

    def targets(self, name: str) -> dict[str, Path]:
        found = {kind: self.out / f"{name}{formats.format_named(kind).extension}"
                 for kind in self.args.format if kind in formats.NAMES}
        if "blend" in self.args.format:
            found["blend"] = self.out / f"{name}.blend"
        if self.args.render:
            found["render"] = self.out / f"{name}{RENDER_SUFFIX}"
        if self.args.render and self.args.move:
            found["move_video"] = self.out / f"{name}{MOVE_VIDEO_SUFFIX}"
        return found

    def convert(self, index: int, image: batch.Image, name: str, number: int, total: int, lone: bool) -> None:
        targets = self.targets(name)
        todo = {kind: path for kind, path in targets.items()
                if not (self.args.skip_existing and path_kind(path) == "file")}
        head = f"[{number}/{total}] {image.key}"
        if not todo:
            self.skipped += 1
            print(f"{head}: skipped, its outputs exist, ETA {_duration(self.eta(total - number))}", flush=True)
            print("Time: 00:00.00 (skipped)", flush=True)  # a step for Flamenco's worker
            return
        t0 = time.perf_counter()
        try:
            g = self.gaussians(image, targets, todo)
            t0 = max(t0, self.loaded_at)
            written = []
            for kind in (k for k in formats.NAMES if k in todo):
                options = {"layout": self.args.layout} if kind == "ply" else {}
                written.append(formats.write_splats(g, todo[kind], kind, **options))
            if "blend" in todo or "render" in todo or "move_video" in todo:
                extra = {}
                if self.args.move:
                    extra["move"] = MoveRequest(self.args.move, self.args.frames, todo.get("move_video"))
                if self.args.render_engine != "cycles":
                    extra["render_engine"] = self.args.render_engine
                self.args.scene_writer(g, name, todo.get("blend"), todo.get("render"), **extra)
                written += [todo[kind] for kind in ("blend", "render", "move_video") if kind in todo]
        except (ImageError, GaussiansError) as e:
            if lone:
                raise
            message = str(e) if isinstance(e, ImageError) else f"image '{image.path}': {e}"
            print(f"error: {message}", file=sys.stderr, flush=True)
            self.failures.append(batch.Failure(index, image, message))
            print(f"Time: {_clock(time.perf_counter() - max(t0, self.loaded_at))} (failed)", flush=True)
            return
        seconds = time.perf_counter() - t0
        self.converted += 1
        self.seconds += seconds
        print(f"{head}: {seconds:.1f} s, ETA {_duration(self.eta(total - number))} "
              f"({len(g):,} Gaussians -> {', '.join(p.name for p in written)})", flush=True)
        for path in written:
            if path.suffix == ".png":  # Flamenco shows it as the task's thumbnail (PLY/blend would push it out)
                print(f"Saved: '{path}'", flush=True)
        print(f"Time: {_clock(seconds)} ({image.key})", flush=True)  # Flamenco's worker advances a step

    def gaussians(self, image: batch.Image, targets: dict[str, Path], todo: dict[str, Path]) -> Gaussians:
        """From the existing PLY when only the scene is missing (a resumed run), else from SHARP."""
        if "ply" in targets and "ply" not in todo:
            try:
                return read_ply(targets["ply"])
            except PLYError:
                pass
        if self.predictor is None:
            from .api import load_predictor

            self.predictor = load_predictor(self.checkpoint, device=self.args.device, precision=self.args.precision)
            print(f"loaded {self.checkpoint} on {self.predictor.device.type} "
                  f"({str(self.predictor.dtype).removeprefix('torch.')}) in {self.predictor.load_seconds:.1f} s",
                  flush=True)
            self.loaded_at = time.perf_counter()
            try:
                self.out.mkdir(parents=True, exist_ok=True)  # only now: a run that cannot start leaves nothing
            except OSError as e:
                raise OutputError.about(self.out, f"cannot be created ({e.strerror or e})") from None
        return self.predictor.predict(image.path, focal_35mm=self.args.focal_35mm)

    def eta(self, remaining: int) -> float:
        return self.seconds / self.converted * remaining if self.converted else 0.0

    def summary(self, total: int) -> int:
        """Print the counts, list the failures (``--failures-file``); the exit status."""
        failed = len(self.failures)
        wall = time.perf_counter() - self.started
        rate = f", {self.converted / self.seconds * 60:.1f} images/min" if self.seconds > 0 else ""
        print(f"done: {self.converted} converted, {self.skipped} skipped (outputs existed), {failed} failed, "
              f"of {total} images in {_duration(wall)}{rate}", flush=True)
        listing = self.args.failures_file
        if listing is not None and batch.record_failures(listing, self.failures):
            print(f"failures: {failed} of {total} images, listed in '{listing}'", flush=True)
        if not failed:
            return 0
        print(f"{failed} of {total} images failed", file=sys.stderr)
        if self.args.allow_failures and self.converted + self.skipped:
            print(f"exit status 0 (--allow-failures): {self.converted + self.skipped} of {total} images are done",
                  file=sys.stderr)
            return 0
        return 1


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 20 s"``, ``"2 h 05 min"``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _clock(seconds: float) -> str:
    """Blender's ``Time:`` format, mm:ss.cc (hh:mm:ss.cc from an hour), which Flamenco's worker counts."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return (f"{hours:02d}:" if hours else "") + f"{minutes:02d}:{rest:05.2f}"


def _check_output_folder(out: Path) -> None:
    """``OutputError`` unless .ply files can be written in ``out`` (made later if missing): before any work."""
    try:
        kind = path_kind(out)
        if kind not in ("folder", "missing"):
            raise OutputError.about(out, f"is a {kind}, not a folder; -o names the folder for the .ply files")
        problem = folder_problem(out, create=True)
    except OSError as e:
        raise OutputError.about(out, f"cannot be used ({e.strerror or e})") from None
    if problem:
        raise OutputError.about(out, f"cannot be {'created' if kind == 'missing' else 'written'}: {problem}")


def _check(args: argparse.Namespace) -> int:
    torch = dependencies.torch_status()
    ckpt = dependencies.checkpoint_status(dependencies.find_checkpoint(args.checkpoint))
    for status in (torch, ckpt):
        print(("ok      " if status.ok else "missing ") + status.message)
    if torch.ok:
        from .devices import choose_precision, resolve_device

        device = resolve_device(args.device)
        print(f"ok      SHARP would run on the {device.type.upper()} in "
              f"{choose_precision(args.precision, device).describe()}")
    return 0 if torch.ok and ckpt.ok else 1

