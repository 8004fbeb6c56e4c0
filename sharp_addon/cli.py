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
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np

from . import dependencies
from .api import DEVICES, PRECISIONS
from .errors import Cancelled, ImageError, OutputError, PLYError, SharpError
from .files import path_kind
from .image import IMAGE_SUFFIXES
from .ply import LAYOUTS, folder_problem, read_ply, write_ply


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

    p = sub.add_parser("info", help="describe a splat PLY file")
    p.add_argument("ply", help="a SHARP or 3DGS .ply file")
    p.set_defaults(run=_info)

    p = sub.add_parser("convert", help="rewrite a splat PLY in another layout, optionally filtered")
    p.add_argument("input", help="a SHARP or 3DGS .ply file")
    p.add_argument("output", help="the .ply file to write (replaced atomically)")
    p.add_argument("--layout", choices=LAYOUTS, default="3dgs",
                   help="'3dgs': vertex element only, for tools that reject ml-sharp's extra elements (default); "
                   "'sharp': ml-sharp's layout")
    p.add_argument("--min-opacity", type=_fraction, default=0.0, help="drop splats less opaque than this (0 to 1)")
    p.add_argument("--keep-fraction", type=_fraction, default=1.0,
                   help="keep this fraction of the splats, the same ones every time")
    p.set_defaults(run=_convert)

    p = sub.add_parser("predict", help="photos to 3D Gaussians, one ml-sharp PLY per photo")
    p.add_argument("-i", "--input", required=True, help="an image file or a folder of images")
    p.add_argument("-o", "--output", required=True, help="folder for the .ply files (created if needed)")
    p.add_argument("-c", "--checkpoint", help=f"SHARP weights (default: ${dependencies.ENV_CHECKPOINT}, "
                   "then the torch hub cache)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--focal-35mm", type=_positive, help="35 mm-equivalent focal length (default: from EXIF)")
    p.add_argument("--layout", choices=LAYOUTS, default="sharp", help="PLY layout (default: ml-sharp's)")
    p.set_defaults(run=_predict)

    p = sub.add_parser("check", help="say whether PyTorch and the SHARP checkpoint are present")
    p.add_argument("-c", "--checkpoint", help=f"checkpoint file (default: ${dependencies.ENV_CHECKPOINT}, "
                   "then the torch hub cache)")
    p.set_defaults(run=_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:  # argparse exits on --help and on bad arguments
        return int(e.code or 0)
    try:
        return int(args.run(args))
    except (KeyboardInterrupt, Cancelled):
        print("cancelled", file=sys.stderr)
        return 130
    except SharpError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _info(args: argparse.Namespace) -> int:
    g = read_ply(args.ply)
    lo, hi = g.means.min(axis=0), g.means.max(axis=0)
    print(f"{args.ply}: {len(g)} Gaussians, SH degree {g.sh_degree}, colour encoding {g.color_space}")
    if g.focal_px is not None and g.image_size is not None:
        print(f"  photo: {g.image_size[0]} x {g.image_size[1]} px, focal length {g.focal_px:.2f} px")
    print(f"  means: x {lo[0]:.3f} .. {hi[0]:.3f}, y {lo[1]:.3f} .. {hi[1]:.3f}, z {lo[2]:.3f} .. {hi[2]:.3f} m")
    print(f"  scales: median {float(np.median(g.scales)):.4g} m; opacity: median {float(np.median(g.opacities)):.3f}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    g = read_ply(args.input)
    if args.layout == "sharp" and (g.focal_px is None or g.image_size is None):  # before filtering: say it now
        raise PLYError.about(args.input, "has no photo camera (focal length and size), which the ml-sharp layout "
                             "records; use --layout 3dgs")
    n = len(g)
    if args.min_opacity > 0:
        g = g.drop_transparent(args.min_opacity)
    if args.keep_fraction < 1:
        g = g.decimate(args.keep_fraction)
    if len(g) == 0:
        raise SharpError(f"no Gaussians left after filtering the {n} of '{args.input}'; nothing written")
    write_ply(g, args.output, layout=args.layout)
    print(f"wrote {args.output}: {len(g)} of {n} Gaussians, layout {args.layout}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .api import load_predictor

    images = _images(Path(args.input))
    out = Path(args.output)
    _check_output_folder(out)
    checkpoint = dependencies.find_checkpoint(args.checkpoint)
    if checkpoint is None:
        raise SharpError(dependencies.checkpoint_status(None).message + ", or pass --checkpoint PATH")
    predictor = load_predictor(checkpoint, device=args.device, precision=args.precision)
    print(f"loaded {checkpoint} on {predictor.device.type} ({str(predictor.dtype).removeprefix('torch.')}) "
          f"in {predictor.load_seconds:.1f} s", flush=True)
    try:
        out.mkdir(parents=True, exist_ok=True)  # only now: a run that cannot start leaves nothing behind
    except OSError as e:
        raise OutputError.about(out, f"cannot be created ({e.strerror or e})") from None
    failed = 0
    for number, image in enumerate(images, start=1):
        t0 = time.perf_counter()
        try:
            g = predictor.predict(image, focal_35mm=args.focal_35mm)
            target = write_ply(g, out / f"{image.stem}.ply", layout=args.layout)
        except SharpError as e:
            if len(images) == 1 or not isinstance(e, ImageError):
                raise
            print(f"error: {e}", file=sys.stderr, flush=True)
            failed += 1
            continue
        print(f"[{number}/{len(images)}] {image.name} -> {target} ({len(g)} Gaussians, "
              f"{time.perf_counter() - t0:.1f} s)", flush=True)
    if failed:
        print(f"{failed} of {len(images)} images failed", file=sys.stderr)
    return 1 if failed else 0


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


def _images(source: Path) -> list[Path]:
    """The photos ``predict -i`` names: one file, or the image files of a folder, in name order."""
    try:
        kind = path_kind(source)
        if kind == "file":
            return [source]
        if kind == "missing":
            raise ImageError.about(source, "no such file or folder")
        if kind != "folder":
            raise ImageError.about(source, f"is a {kind}, not an image file or a folder of images")
        entries = sorted(source.iterdir())
        images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and path_kind(p) != "folder"]
    except OSError as e:
        raise ImageError.about(source, f"cannot be read ({e.strerror or e})") from None
    if not entries:
        raise ImageError.about(source, "is an empty folder; give an image or a folder of images")
    if not images:
        raise ImageError.about(source, f"is a folder without images ({', '.join(IMAGE_SUFFIXES)}); it holds "
                               f"{len(entries)} other entries")
    return images


def _check(args: argparse.Namespace) -> int:
    torch = dependencies.torch_status()
    ckpt = dependencies.checkpoint_status(dependencies.find_checkpoint(args.checkpoint))
    for status in (torch, ckpt):
        print(("ok      " if status.ok else "missing ") + status.message)
    return 0 if torch.ok and ckpt.ok else 1
