"""SOG, PlayCanvas' compact splat format (version 2): ``meta.json`` and lossless WebP images, zipped
into one ``.sog`` file or lying in a folder.

No bpy; Pillow (shipped with the extension) reads and writes the WebP images and is imported on
first use. Specification: developer.playcanvas.com/user-manual/gaussian-splatting/formats/sog/ and
PlayCanvas splat-transform's reader and writer. In a W x H texture (W = ceil(sqrt(N) / 4) * 4,
H = ceil(N / W / 4) * 4), texel i holds splat i; the splats are in Morton order. Axes: PLY's (RDF).

- means: v' = sign(v) ln(|v| + 1), 16 bits between ``mins`` and ``maxs`` per axis, the low bytes in
  ``means_l``, the high bytes in ``means_u`` (RGB).
- quats (w, x, y, z): normalised, the largest component made positive and dropped; the other three
  in order as 255 (c sqrt(2) / 2 + 1 / 2) in RGB, A = 252 + the dropped index.
- scales: RGB index a 256-entry codebook of ln(scale), one for the three axes.
- sh0: RGB index a 256-entry codebook of f_dc (sRGB-encoded, as 3DGS files), A = opacity 255.
- shN (SH degree 1-3): ``shN_labels`` R + 256 G picks a palette centroid; centroid c holds its
  coefficient j at texel (c mod 64) K + j of row c div 64 of ``shN_centroids`` (K coefficients per
  channel), RGB indexing one 256-entry codebook.

Reading bounds all memory by the declared count, after checking that count against the file: zip
members and WebP images that are larger than the count needs are refused before they are unpacked.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GaussiansError, SplatFileError
from ..files import atomic_output
from ..gaussians import SH_REST_COUNTS, Gaussians, color_to_sh_dc, colors_from_file_sh_dc, linear_to_srgb
from . import check_count, smallest_three
from . import sog_codebooks as codebooks
from .morton import morton_order
from .sog_meta import MAX_PALETTE, META, SH_BANDS_COEFFICIENTS, VERSION, SogMeta, parse_meta

MAX_SIDE = 16383  # the largest WebP image side
MAX_META_BYTES = 1 << 20
# A file must hold at least this many bytes per declared splat, so that what it unpacks to stays
# within a few hundred times its size: lossless WebP of real splats takes several (the low bytes of
# positions hardly compress; a flat grid of otherwise identical splats takes 2.7), and only a file of
# identical splats, or a damaged one, or a bomb, declares more splats than this.
MIN_BYTES_PER_SPLAT = 0.5
SQRT2 = math.sqrt(2.0)
WEBP_QUALITY, WEBP_METHOD = 25, 0  # lossless effort: fast (the WebP files shrink by a few per cent at most with more)

Loader = Callable[[str, int], bytes]  # (file name in meta.json, largest size allowed) -> its bytes


def texture_size(n: int) -> tuple[int, int]:
    """(W, H) of the textures of n splats."""
    w = max(4, math.ceil(math.sqrt(n) / 4) * 4)
    return w, max(4, math.ceil(n / w / 4) * 4)


# ---- writing --------------------------------------------------------------------------------------


def encode(g: Gaussians, morton: bool = True, sh_iterations: int = 4, sh_palette: int | None = None) -> bytes:
    """The bytes of a ``.sog`` file (a zip of meta.json and the WebP images, stored uncompressed).

    ``morton`` orders the splats along a Z-order curve (as PlayCanvas does; smaller files);
    ``sh_palette`` (at most 65,536) overrides the number of SH centroids, ``sh_iterations`` the k-means passes.
    """
    members = encode_members(g, morton, sh_iterations, sh_palette)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def write_folder(g: Gaussians, folder: str | os.PathLike[str], **options: Any) -> Path:
    """Write meta.json and the WebP images into ``folder`` (made if missing), meta.json last; its path.

    ``options`` as for ``encode``. Each file is written whole or not at all.
    """
    members = encode_members(g, **options)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(members, key=lambda n: n == META):
            with atomic_output(folder / name) as temp:
                temp.write_bytes(members[name])
    except OSError as e:
        raise SplatFileError.about(str(folder), f"cannot be written ({e.strerror or e})") from None
    return folder / META


def encode_members(g: Gaussians, morton: bool = True, sh_iterations: int = 4,
                   sh_palette: int | None = None) -> dict[str, bytes]:
    """meta.json and the WebP images of ``g``, by file name (meta.json first)."""
    n = len(g)
    w, h = texture_size(n)
    if n == 0 or max(w, h) > MAX_SIDE:
        raise SplatFileError(f"a SOG file holds 1 to about 268 million splats (WebP images of at most "
                             f"{MAX_SIDE} x {MAX_SIDE}); got {n:,}")
    if sh_palette is not None and not 1 <= sh_palette <= MAX_PALETTE:
        raise SplatFileError(f"sh_palette must lie in 1..{MAX_PALETTE}; got {sh_palette}")
    order = morton_order(g.means) if morton else None

    def take(values: np.ndarray) -> np.ndarray:  # in file order (np.take: numpy's fancy indexing is slow)
        return values if order is None else np.take(values, order, axis=0)

    meta: dict[str, Any] = {"version": VERSION, "asset": {"generator": "SHARP from Image (sharp_addon)"},
                            "count": n}
    images: dict[str, np.ndarray] = {}
    meta["means"] = _encode_means(take(g.means), images)
    meta["scales"] = _encode_scales(take(g.scales), images)
    meta["quats"] = _encode_quats(take(g.quats), images)
    meta["sh0"] = _encode_sh0(take(g.colors), take(g.opacities), images)
    if g.sh_rest is not None:
        size = sh_palette or codebooks.palette_size(n)
        meta["shN"] = _encode_sh_rest(take(g.sh_rest), size, sh_iterations, images)
    members = {META: json.dumps(meta, separators=(",", ":")).encode("utf-8")}
    for name, image in images.items():
        members[name] = _webp(image)
    return members


def _encode_means(means: np.ndarray, images: dict[str, np.ndarray]) -> dict[str, Any]:
    v = np.ascontiguousarray(means.T)  # [3, N] float32 (ample for 16 bits): reductions along rows are fast
    v = np.copysign(np.log1p(np.abs(v)), v)
    lo, hi = v.min(axis=1), v.max(axis=1)
    scale = np.float32(65535) / np.where(hi > lo, hi - lo, np.float32(1))
    u = np.rint((v - lo[:, None]) * scale[:, None]).astype(np.uint16)
    images["means_l.webp"] = _texels((u & 0xFF).astype(np.uint8), alpha=255)
    images["means_u.webp"] = _texels((u >> 8).astype(np.uint8), alpha=255)
    return {"mins": lo.tolist(), "maxs": hi.tolist(), "files": ["means_l.webp", "means_u.webp"]}


def _encode_scales(scales: np.ndarray, images: dict[str, np.ndarray]) -> dict[str, Any]:
    with np.errstate(divide="ignore"):
        logs = np.maximum(np.log(np.ascontiguousarray(scales.T)), np.float32(-30))  # zero: e^-30, flat
    codebook, labels = codebooks.quantise_1d(logs)
    images["scales.webp"] = _texels(labels, alpha=255)
    return {"codebook": _json_floats(codebook), "files": ["scales.webp"]}


def _encode_quats(quats: np.ndarray, images: dict[str, np.ndarray]) -> dict[str, Any]:
    largest, kept = smallest_three.split(quats)
    rgb = np.clip(np.rint(kept * np.float32(255 * SQRT2 / 2) + np.float32(127.5)), 0, 255).astype(np.uint8)
    images["quats.webp"] = _texels(rgb, alpha=252 + largest)
    return {"files": ["quats.webp"]}


def _encode_sh0(colors: np.ndarray, opacities: np.ndarray, images: dict[str, np.ndarray]) -> dict[str, Any]:
    f_dc = color_to_sh_dc(linear_to_srgb(np.ascontiguousarray(colors.T)))  # [3, N], sRGB-encoded as 3DGS files
    codebook, labels = codebooks.quantise_1d(f_dc)
    images["sh0.webp"] = _texels(labels, alpha=np.rint(opacities * 255).astype(np.uint8))
    return {"codebook": _json_floats(codebook), "files": ["sh0.webp"]}


def _encode_sh_rest(sh_rest: np.ndarray, size: int, iterations: int, images: dict[str, np.ndarray]) -> dict[str, Any]:
    n, k, _ = sh_rest.shape
    centroids, labels = codebooks.sh_palette(sh_rest.reshape(n, -1), min(size, n), iterations)
    count = len(centroids)
    codebook, indices = codebooks.quantise_1d(centroids)  # [P, K * 3] -> uint8, coefficient-major RGB
    rows = math.ceil(count / 64)
    table = np.zeros((rows * 64, k, 4), np.uint8)
    table[:count, :, :3] = indices.reshape(count, k, 3)
    table[:, :, 3] = 255
    images["shN_centroids.webp"] = table.reshape(rows, 64 * k, 4)
    images["shN_labels.webp"] = _texels(np.stack([labels & 0xFF, labels >> 8, np.zeros_like(labels)]).astype(np.uint8),
                                        alpha=255)
    return {"count": count, "bands": SH_REST_COUNTS[k], "codebook": _json_floats(codebook),
            "files": ["shN_centroids.webp", "shN_labels.webp"]}


def _texels(rgb: np.ndarray, alpha: int | np.ndarray) -> np.ndarray:  # [3, N] uint8 -> [H, W, 4] uint8
    """A texture holding one texel per splat (the rest zero)."""
    n = rgb.shape[1]
    w, h = texture_size(n)
    flat = np.zeros((w * h, 4), np.uint8)
    for channel in range(3):
        flat[:n, channel] = rgb[channel]
    flat[:n, 3] = alpha
    return flat.reshape(h, w, 4)


def _json_floats(values: np.ndarray) -> list[float]:
    """float32 values as the shortest decimals that read back as the same float32."""
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32)]


def _webp(image: np.ndarray) -> bytes:
    """Lossless WebP of an RGBA image, RGB kept where alpha is 0 (``exact``)."""
    pil = _pillow()
    out = io.BytesIO()
    pil.fromarray(image, "RGBA").save(out, format="WEBP", lossless=True, exact=True, quality=WEBP_QUALITY,
                                      method=WEBP_METHOD)
    return out.getvalue()


def _pillow(source: str | None = None) -> Any:
    """PIL.Image, or a ``SplatFileError`` saying that SOG needs Pillow with WebP."""
    problem = None
    try:
        from PIL import Image, features

        if not features.check("webp"):
            problem = "the installed Pillow was built without WebP support"
    except ImportError:
        problem = "Pillow (PIL) cannot be imported"
    if problem is None:
        return Image
    text = f"SOG images are WebP, read and written with Pillow, and {problem}"
    raise SplatFileError.about(source, f"cannot be read: {text}") if source else SplatFileError(text)


# ---- reading --------------------------------------------------------------------------------------


def decode(data: bytes, source: str = "<bytes>") -> Gaussians:
    """Gaussians from the bytes of a ``.sog`` file (a zip holding meta.json and its images)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise SplatFileError.about(source, f"is not a SOG file: not a readable zip archive ({e})") from None
    metas = [name for name in members if name == META or name.endswith("/" + META)]
    if len(metas) != 1:
        found = "none" if not metas else ", ".join(metas)
        raise SplatFileError.about(source, f"is not a SOG file: it must hold one {META}; found {found}")
    prefix = metas[0][: -len(META)]

    def load(name: str, limit: int) -> bytes:
        info = members.get(prefix + name)
        if info is None:
            raise SplatFileError.about(source, f"lacks {name}, which its {META} names")
        if info.file_size > limit:
            raise _too_large(source, name, info.file_size, limit)
        try:
            with archive.open(info) as f:
                return _bounded(f.read(limit + 1), name, limit, source)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as e:
            raise SplatFileError.about(source, f"has a damaged {name} in its zip archive ({e})") from None

    return decode_members(load, lambda names: len(data), source)


def decode_folder(folder: str | os.PathLike[str], source: str | None = None) -> Gaussians:
    """Gaussians from a folder holding meta.json and its images (or from the path of that meta.json)."""
    path = Path(folder)
    meta_path = path if path.name == META and not path.is_dir() else path / META
    source = source or str(meta_path)
    base = meta_path.parent

    def load(name: str, limit: int) -> bytes:
        target = base / name
        try:
            if not target.is_file():
                raise SplatFileError.about(source, f"lacks {name} beside it, which its {META} names"
                                           if name != META else f"is not a SOG folder: it has no {META}")
            size = target.stat().st_size
            if size > limit:
                raise _too_large(source, name, size, limit)
            with target.open("rb") as f:
                return _bounded(f.read(limit + 1), name, limit, source)
        except OSError as e:
            raise SplatFileError.about(source, f"cannot read {name} ({e.strerror or e})") from None

    def available(names: list[str]) -> int:  # a missing file is reported when it is loaded
        return sum(path.stat().st_size for path in (base / name for name in {META, *names}) if path.is_file())

    return decode_members(load, available, source)


def decode_members(load: Loader, available: Callable[[list[str]], int], source: str) -> Gaussians:
    """Gaussians from meta.json and the images ``load`` gives; ``available(image names)``: the bytes
    the files hold, to check the declared count against."""
    try:
        meta = json.loads(load(META, MAX_META_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SplatFileError.about(source, f"has a {META} that is not JSON ({e})") from None
    spec = parse_meta(meta, source)
    n = check_count(spec.count, MIN_BYTES_PER_SPLAT, available(spec.files), source)

    def texels(index: int, width: int | None = None, rows: int = 0) -> np.ndarray:
        return _read_texture(load, spec.files[index], n, source, width, rows)

    u = texels(0)[:, :3].astype(np.uint16) | (texels(1)[:, :3].astype(np.uint16) << 8)
    lo, hi = spec.means_lo.astype(np.float32), spec.means_hi.astype(np.float32)
    v = lo + u * ((hi - lo) / np.float32(65535))
    means = np.copysign(np.expm1(np.abs(v)), v)
    quats = _decode_quats(texels(2), source)
    with np.errstate(over="ignore"):  # a huge codebook entry: inf, which Gaussians refuses
        scales = np.exp(spec.scales_codebook).astype(np.float32)[texels(3)[:, :3]]
    sh0 = texels(4)
    colors = colors_from_file_sh_dc(spec.sh0_codebook.astype(np.float32), "srgb")[sh0[:, :3]]  # a table of 256
    opacities = sh0[:, 3] * np.float32(1 / 255)
    sh_rest = None
    if spec.sh_bands:
        k = SH_BANDS_COEFFICIENTS[spec.sh_bands]
        rows = math.ceil(spec.sh_count / 64)
        sh_rest = _decode_sh_rest(texels(5, 64 * k, rows), texels(6), spec, source)
    try:
        return Gaussians(means=means, scales=scales, quats=quats, colors=colors, opacities=opacities,
                         sh_rest=sh_rest, color_space="srgb")
    except GaussiansError as e:
        raise SplatFileError.about(source, str(e)) from None


def _decode_quats(texels: np.ndarray, source: str) -> np.ndarray:
    largest = texels[:, 3] - np.uint8(252)
    bad = np.count_nonzero(largest > 3)  # uint8: below 252 wrapped round to > 3 as well
    if bad:
        raise SplatFileError.about(source, f"has {bad:,} rotations whose tag (alpha of the quats image) is not "
                                   "252..255 (a damaged file)")
    kept = texels[:, :3].T * np.float32(2 / 255 / SQRT2) - np.float32(1 / SQRT2)
    return smallest_three.join(largest, kept)


def _decode_sh_rest(table: np.ndarray, label_texels: np.ndarray, spec: SogMeta, source: str) -> np.ndarray:
    """[N, K, 3] from the centroid table (64 centroids of K texels per row) and the label texels."""
    count = spec.sh_count
    k = table.shape[0] // math.ceil(count / 64) // 64
    assert spec.sh_codebook is not None
    centroids = spec.sh_codebook[table[:, :3].reshape(-1, k, 3)[:count]].astype(np.float32)
    labels = label_texels[:, 0].astype(np.int64) | (label_texels[:, 1].astype(np.int64) << 8)
    bad = np.count_nonzero(labels >= count)
    if bad:
        raise SplatFileError.about(source, f"has {bad:,} SH labels beyond its palette of {count:,} centroids "
                                   "(a damaged file)")
    return centroids[labels]


def _read_texture(load: Loader, name: str, n: int, source: str, width: int | None = None,
                  rows: int = 0) -> np.ndarray:
    """The first texels of a lossless WebP image as [texels, 4] uint8: n for a per-splat texture, or
    ``rows`` rows of exactly ``width`` (the SH centroids). Its size is checked before it is decoded."""
    if width is None:
        w, h = texture_size(n)
        needed, limit = n, 2 * w * h
    else:
        needed, limit = width * rows, 2 * width * rows
    raw = load(name, 4 * limit + (1 << 16))
    if _is_lossy_webp(raw):
        raise SplatFileError.about(source, f"has a lossy WebP image {name}; SOG images must be lossless")
    pil = _pillow(source)
    try:
        with pil.open(io.BytesIO(raw), formats=["WEBP"]) as image:
            iw, ih = image.size
            fits = iw == width and ih >= rows if width is not None else iw * ih >= needed
            if not fits or iw * ih > limit:
                want = f"{width} texels wide and {rows} or more high" if width is not None else (
                    f"{needed:,} to {limit:,} texels")
                raise SplatFileError.about(source, f"has an image {name} of {iw} x {ih}; its {n:,} splats need "
                                           f"{want} (a damaged file)")
            rgba = np.asarray(image if image.mode == "RGBA" else image.convert("RGBA"))
    except SplatFileError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, pil.DecompressionBombError) as e:
        raise SplatFileError.about(source, f"has an image {name} that is not a readable WebP ({e})") from None
    return rgba.reshape(-1, 4)[:needed]


def _is_lossy_webp(raw: bytes) -> bool:
    """Whether a RIFF WebP holds a lossy ("VP8 ") image chunk rather than a lossless ("VP8L") one."""
    pos = 12
    while pos + 8 <= len(raw):
        fourcc, size = raw[pos : pos + 4], int.from_bytes(raw[pos + 4 : pos + 8], "little")
        if fourcc in (b"VP8 ", b"VP8L"):
            return fourcc == b"VP8 "
        pos += 8 + size + (size & 1)
    return False


def _bounded(raw: bytes, name: str, limit: int, source: str) -> bytes:
    if len(raw) > limit:
        raise _too_large(source, name, len(raw), limit)
    return raw


def _too_large(source: str, name: str, size: int, limit: int) -> SplatFileError:
    return SplatFileError.about(source, f"has a {name} of {size:,} bytes (unpacked), more than the {limit:,} "
                                "its declared splats can need (a damaged file or a zip bomb)")
