"""Niantic's SPZ: about 20 bytes a splat, in the axes its specification names (RUB).

No bpy. Reads versions 1-4 and writes 2, 3 (the default: the newest that the common web viewers
read) and 4. What the bytes mean (Niantic's ``load-spz.cc``; ``docs/formats.md``):

- v1-3 are one gzip stream of a 16-byte header (magic "NGSP", version, count, SH degree,
  fractional bits, flags, a reserved byte) and six planar arrays: positions, alphas, colours,
  scales, rotations, SH; then extension records where flag 0x2 says so.
- v4 is a plain 32-byte header (the same fields, the stream count, the table's offset), extension
  records up to the table, a table of (compressed, uncompressed) u64 sizes and one zstd frame per
  non-empty array, in the same order.
- positions: 24-bit signed fixed point with ``fractional_bits`` (12: 1/4096 m steps; v1: float16);
  alphas: opacity * 255; colours: f_dc * 0.15 * 255 + 127.5 (not SH_C0); scales: (ln s + 10) * 16;
  rotations (x, y, z, w): v1-2 x, y, z of the quaternion with w >= 0 as q * 127.5 + 127.5, v3-4 the
  "smallest three" in a u32 (index of the largest component, then 1 sign + 9 magnitude bits of
  the others scaled by 1/sqrt(1/2)); SH: x * 128 + 128 per coefficient, RGB innermost, degree 1 in
  5-bit and higher degrees in 4-bit steps (what the reference writer stores).

The antialiased flag (0x1: mip-splatting's filter) is not kept; our splats have no such setting.
Every count is checked against the file's size before anything is allocated, and no stream is
inflated past what its header declares (a decompression bomb is an error, not a full memory).
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from ..errors import SplatFileError
from ..gaussians import Gaussians, color_to_sh_dc, colors_from_file_sh_dc, linear_to_srgb
from . import check_count
from .axes import from_axes, to_axes

MAGIC = b"NGSP"  # u32 0x5053474e, little-endian
WRITE_VERSIONS = (2, 3, 4)
DEFAULT_VERSION = 3  # Spark and gaussian-splats-3d read v1-3 only; splat-transform and Blender 5.3 read v4 too
NGSP_VERSION = 4  # the first version with the plain header and zstd streams
FRACTIONAL_BITS = 12  # the reference writer's position step, 1/4096 m (range +-2048 m)
COLOR_SCALE = 0.15
SH_STEPS = (8, 16)  # byte buckets of SH degree 1 (5 bits) and of degrees 2-4 (4 bits)
SH_COUNTS = {0: 0, 1: 3, 2: 8, 3: 15, 4: 24}  # coefficients per channel beyond DC
# inflated bytes per file byte we believe: SHARP's splats 1.8-1.9, a flat wall whose splats differ only in
# position 28 (v4); memory stays within a few hundred times the file's size (Niantic's reader allows ~2,300)
MAX_RATIO = 256
EXTENSION_LIMIT = 1 << 20  # bytes of extension records we read after a v1-3 stream
COORDINATE_SYSTEM_EXTENSION = 0xADBE0003  # Adobe's record: the axes the splats are stored in
AXES_CODES = {0: "RUB", 4: "RUB", 6: "RDF"}  # its codes that we convert (0: unspecified = RUB)
ZSTD_LEVEL = 3  # zstd's default: 2 % larger than the reference writer's 12, at a sixth of its time
GZIP_LEVEL = 3  # 1.5 % larger than zlib's default 6 (the reference writer's), at half its time
GZIP_PIECE = 1 << 20
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time, unknown OS


# what each byte stands for (tables: a byte array indexes them far faster than it can be computed)
BYTES = np.arange(256, dtype=np.float32)
SCALE_OF_BYTE = np.exp(BYTES / 16 - 10)
OPACITY_OF_BYTE = BYTES / 255
COLOR_OF_BYTE = colors_from_file_sh_dc((BYTES / 255 - np.float32(0.5)) / np.float32(COLOR_SCALE), "srgb")  # linear
SH_OF_BYTE = (BYTES - 128) / 128


@dataclass(frozen=True)
class Header:
    version: int
    count: int
    sh_degree: int
    fractional_bits: int
    flags: int = 0

    def section_sizes(self) -> dict[str, int]:
        """Bytes of each array, in file order."""
        n = self.count
        return {"positions": n * (6 if self.version == 1 else 9), "alphas": n, "colors": 3 * n, "scales": 3 * n,
                "rotations": n * (3 if self.version < 3 else 4), "sh": 3 * n * SH_COUNTS[self.sh_degree]}

    def packed(self) -> bytes:
        return MAGIC + struct.pack("<IIBBBB", self.version, self.count, self.sh_degree, self.fractional_bits,
                                   self.flags, 0)


# ---- writing --------------------------------------------------------------------------------------


def encode(g: Gaussians, version: int = DEFAULT_VERSION) -> bytes:
    """The SPZ file of ``g`` (stored in RUB axes, DC colour sRGB-encoded as every reader assumes)."""
    if version not in WRITE_VERSIONS:
        raise SplatFileError(f"SPZ version {version} cannot be written: we write versions "
                             f"{', '.join(map(str, WRITE_VERSIONS))} (3 is read most widely)")
    if len(g) == 0:
        raise SplatFileError("an SPZ file needs at least one splat (its readers refuse an empty one); there are none")
    stored = to_axes(g, "RUB")
    header = Header(version, len(g), g.sh_degree, fractional_bits_for(stored.means))
    arrays = _pack(stored, header)
    if version < NGSP_VERSION:
        return _gzip([header.packed(), *arrays.values()])
    return _ngsp_file(header, arrays)


def fractional_bits_for(means: np.ndarray) -> int:  # [N, 3] metres
    """12 (the reference's), or fewer where a coordinate would not fit 24 bits at 1/4096 m."""
    reach = float(np.abs(means).max(initial=0.0)) + 1.0
    bits = min(FRACTIONAL_BITS, int(np.floor(np.log2((2**23 - 1) / reach))))
    if bits < 0:
        raise SplatFileError(f"SPZ stores positions as 24-bit fixed point (up to 8,388,607 m from the origin); "
                             f"these splats reach {reach - 1:.6g} m")
    return bits


def _pack(g: Gaussians, header: Header) -> dict[str, np.ndarray]:
    """The six arrays of ``header``'s version, as uint8 (``g`` already in the file's axes)."""
    n = len(g)
    fixed = np.rint(g.means.astype(np.float64) * 2.0**header.fractional_bits).astype("<i4")
    with np.errstate(divide="ignore"):  # a zero scale becomes the smallest SPZ can store
        log_scales = np.log(g.scales)
    f_dc = color_to_sh_dc(linear_to_srgb(g.colors))
    arrays = {
        "positions": fixed.view(np.uint8).reshape(n, 3, 4)[:, :, :3],
        "alphas": _bytes(g.opacities * 255),
        "colors": _bytes(f_dc * (COLOR_SCALE * 255) + 127.5),
        "scales": _bytes((log_scales + 10) * 16),
        "rotations": _rotations_smallest_three(g.quats) if header.version >= 3 else _rotations_first_three(g.quats),
        "sh": _sh_bytes(g.sh_rest),
    }
    return {name: np.ascontiguousarray(a).reshape(-1) for name, a in arrays.items()}


def _bytes(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _xyzw(quats_wxyz: np.ndarray) -> np.ndarray:  # [N, 4] -> [N, 4] unit, (x, y, z, w)
    q = quats_wxyz[:, [1, 2, 3, 0]]
    return q / np.sqrt(np.einsum("ij,ij->i", q, q))[:, None]


def _rotations_first_three(quats_wxyz: np.ndarray) -> np.ndarray:  # -> [N, 3] uint8
    q = _xyzw(quats_wxyz)
    return _bytes(q[:, :3] * np.where(q[:, 3:] < 0, -127.5, 127.5).astype(np.float32) + 127.5)


def _rotations_smallest_three(quats_wxyz: np.ndarray) -> np.ndarray:  # -> [N, 4] uint8 (a u32 LE each)
    q = _xyzw(quats_wxyz)
    largest = np.argmax(np.abs(q), axis=1)
    flip = np.take_along_axis(q, largest[:, None], axis=1)[:, 0] < 0  # make the largest positive
    word = largest.astype(np.uint32) << 30
    for k in range(3):  # the components beside the largest, in order: column k, or k + 1 once past it
        other = np.where(largest > k, q[:, k], q[:, k + 1])
        magnitude = np.minimum(np.abs(other) * np.float32(511 / np.sqrt(0.5)) + np.float32(0.5), 511).astype(np.uint32)
        word |= (((other < 0) != flip).astype(np.uint32) << 9 | magnitude) << (20 - 10 * k)
    return word.astype("<u4").view(np.uint8)


def _sh_bytes(sh_rest: np.ndarray | None) -> np.ndarray:  # [N, K, 3] -> [N, 3K] uint8, RGB innermost
    if sh_rest is None:
        return np.zeros(0, np.uint8)
    q = np.rint(sh_rest.astype(np.float64) * 128) + 128
    step = np.where(np.arange(sh_rest.shape[1]) < 3, *SH_STEPS)[None, :, None]
    return np.clip((q + step // 2) // step * step, 0, 255).astype(np.uint8)


def _gzip(parts: list) -> bytes:
    """One gzip member, deflated in 1 MiB pieces on two threads as pigz does (each piece ends on a byte
    boundary and no back-reference crosses one), which any gzip reader inflates as one stream."""
    data = memoryview(b"".join(parts))
    pieces = [data[i:i + GZIP_PIECE] for i in range(0, len(data), GZIP_PIECE)]

    def deflate(i: int) -> bytes:
        deflater = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
        last = i == len(pieces) - 1
        return deflater.compress(pieces[i]) + deflater.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    with ThreadPoolExecutor(max_workers=2) as pool:  # zlib lets go of the GIL
        body = list(pool.map(deflate, range(len(pieces))))
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return b"".join([GZIP_HEADER, *body, trailer])


def _ngsp_file(header: Header, arrays: dict[str, np.ndarray]) -> bytes:
    """v4: the plain header, the table of sizes, one zstd frame per non-empty array."""
    zstd = _zstandard(None)
    present = [a for a in arrays.values() if a.size]

    def compress(a: np.ndarray) -> bytes:
        return zstd.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compress(a)

    with ThreadPoolExecutor(max_workers=2) as pool:  # zstd lets go of the GIL: the largest arrays side by side
        frames = list(pool.map(compress, present))
    table = b"".join(struct.pack("<QQ", len(f), a.size) for f, a in zip(frames, present))
    plain = header.packed()[:12] + struct.pack("<BBBBI", header.sh_degree, header.fractional_bits, header.flags,
                                               len(frames), 32) + bytes(12)
    return b"".join([plain, table, *frames])


def _zstandard(source: str | None) -> ModuleType:
    """The ``zstandard`` package (Blender and the bpy wheels ship it), or an error saying it is missing."""
    try:
        import zstandard
    except ImportError:
        problem = ("needs the Python package 'zstandard' (it comes with Blender), which is not installed here: "
                   "install it")
        if source is None:
            raise SplatFileError(f"SPZ version 4 {problem}, or write version 3") from None
        raise SplatFileError.about(source, f"is SPZ version 4, which {problem}") from None
    return zstandard


# ---- reading --------------------------------------------------------------------------------------


def decode(data: bytes, source: str = "<bytes>") -> Gaussians:
    """The splats of an SPZ file's bytes, in the photo's axes (RDF); ``SplatFileError`` naming ``source``."""
    data = bytes(data)
    if data[:4] == MAGIC:
        header, arrays, extensions = _read_ngsp(data, source)
    elif data[:2] == b"\x1f\x8b":
        header, arrays, extensions = _read_gzip(data, source)
    else:
        raise SplatFileError.about(source, f"is not an SPZ file: it starts with {data[:4].hex(' ') or 'nothing'}, "
                                   "not gzip's 1f 8b (versions 1-3) or 'NGSP' (version 4)")
    axes = _stored_axes(extensions, source)
    return from_axes(_unpack(header, arrays, source), axes)


def _header(raw: bytes, source: str, available: int, container: str) -> Header:
    """The header fields, each checked, and the count checked against the file's size."""
    version, count, sh_degree, fractional_bits, flags = struct.unpack_from("<IIBBB", raw, 4)
    if raw[:4] != MAGIC:
        raise SplatFileError.about(source, f"is not an SPZ file: its {container} data starts with "
                                   f"{raw[:4].hex(' ')}, not 'NGSP'")
    versions = (1, 2, 3) if container == "gzip" else (NGSP_VERSION,)
    if version not in versions:
        known = "versions 1-3 in gzip" if container == "gzip" else "version 4 with this header"
        raise SplatFileError.about(source, f"is SPZ version {version}, which we cannot read (we read {known}; "
                                   "a newer version needs a newer add-on)")
    if sh_degree > 3:
        raise SplatFileError.about(source, f"declares SH degree {sh_degree}; SPZ allows 0-4 and we keep 0-3"
                                   + (" (degree 4 is not kept by 3DGS files or by Blender)" if sh_degree == 4 else ""))
    if count == 0:
        raise SplatFileError.about(source, "declares no splats (an SPZ file holds at least one)")
    if fractional_bits > 24:
        raise SplatFileError.about(source, f"declares {fractional_bits} fractional bits for its 24-bit positions "
                                   "(at most 24)")
    header = Header(version, count, sh_degree, fractional_bits, flags)
    check_count(count, sum(header.section_sizes().values()) / count / MAX_RATIO, available, source)
    return header


def _read_gzip(data: bytes, source: str) -> tuple[Header, dict[str, memoryview], bytes]:
    """v1-3: one gzip stream, never inflated past its header's count (and the extension allowance)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        head = inflater.decompress(data, 16)
        if len(head) < 16:
            raise SplatFileError.about(source, "is cut off: its gzip data ends before the 16-byte SPZ header")
        header = _header(head, source, len(data), "gzip")
        sizes = header.section_sizes()
        limit = sum(sizes.values()) + (EXTENSION_LIMIT if header.flags & 0x2 else 0)
        body = inflater.decompress(inflater.unconsumed_tail, limit + 1)
    except zlib.error as e:
        raise SplatFileError.about(source, f"is damaged: its gzip data does not inflate ({e})") from None
    if len(body) > limit:
        raise SplatFileError.about(source, f"inflates to more than the {limit:,} bytes its header declares "
                                   f"({header.count:,} splats): a damaged file or a decompression bomb")
    if not inflater.eof:
        raise SplatFileError.about(source, f"is cut off: its gzip data ends early ({len(data):,} bytes)")
    if inflater.unused_data:
        raise SplatFileError.about(source, f"has {len(inflater.unused_data):,} bytes after its gzip data")
    return header, _split(memoryview(body), sizes, header, source), body[sum(sizes.values()):]


def _split(body: memoryview, sizes: dict[str, int], header: Header, source: str) -> dict[str, memoryview]:
    need = sum(sizes.values())
    if len(body) < need:
        raise SplatFileError.about(source, f"is cut off: holds {len(body):,} of the {need:,} bytes its "
                                   f"{header.count:,} splats need")
    offsets = np.cumsum([0, *sizes.values()])
    return {name: body[offsets[i]:offsets[i + 1]] for i, name in enumerate(sizes)}


def _read_ngsp(data: bytes, source: str) -> tuple[Header, dict[str, memoryview], bytes]:
    """v4: the plain header, its table of sizes and one zstd frame per non-empty array."""
    if len(data) < 32:
        raise SplatFileError.about(source, f"is cut off: {len(data)} bytes, less than the 32-byte SPZ header")
    header = _header(data[:16], source, len(data), "NGSP")
    streams, table_at = struct.unpack_from("<BI", data, 15)
    sizes = {name: size for name, size in header.section_sizes().items() if size}
    if streams != len(sizes):
        raise SplatFileError.about(source, f"declares {streams} streams; SH degree {header.sh_degree} needs "
                                   f"{len(sizes)} ({', '.join(sizes)})")
    table_end = table_at + 16 * streams
    if not 32 <= table_at <= table_end <= len(data):
        raise SplatFileError.about(source, f"puts its table of streams at byte {table_at:,}, outside the "
                                   f"{len(data):,} bytes of the file (a damaged or cut-off file)")
    table = np.frombuffer(data, "<u8", 2 * streams, table_at).reshape(-1, 2)
    if int(table[:, 0].sum()) != len(data) - table_end:
        raise SplatFileError.about(source, f"has {len(data) - table_end:,} bytes of streams where its table "
                                   f"declares {int(table[:, 0].sum()):,} (a damaged, cut-off or padded file)")
    for (name, size), (_, inflated) in zip(sizes.items(), table):
        if int(inflated) != size:
            raise SplatFileError.about(source, f"declares {int(inflated):,} bytes of {name}; its "
                                       f"{header.count:,} splats need {size:,}")
    zstd = _zstandard(source)
    ends = table_end + np.cumsum([0, *table[:, 0].tolist()])
    frames = [memoryview(data)[ends[i]:ends[i + 1]] for i in range(streams)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        arrays = list(pool.map(lambda f, name: _inflate_zstd(zstd, f, sizes[name], name, source), frames, sizes))
    found = {name: memoryview(a) for name, a in zip(sizes, arrays)}
    found.setdefault("sh", memoryview(b""))
    return header, found, data[32:table_at] if header.flags & 0x2 else b""


def _inflate_zstd(zstd: ModuleType, frame: memoryview, size: int, name: str, source: str) -> bytes:
    """One zstd frame that must inflate to exactly ``size`` bytes (never more are made)."""
    try:
        if _zstd_frame_length(zstd, frame) != len(frame):
            raise SplatFileError.about(source, f"is damaged: its {name} stream is not one whole zstd frame")
        content = zstd.get_frame_parameters(frame).content_size
        if content != zstd.CONTENTSIZE_UNKNOWN and content != size:
            raise SplatFileError.about(source, f"is damaged: its {name} stream inflates to {content:,} bytes, "
                                       f"not the {size:,} its header declares")
        out = zstd.ZstdDecompressor().decompress(frame, max_output_size=size)
    except zstd.ZstdError as e:
        raise SplatFileError.about(source, f"is damaged: its {name} stream does not inflate ({e})") from None
    if len(out) != size:
        raise SplatFileError.about(source, f"is damaged: its {name} stream inflates to {len(out):,} bytes, "
                                   f"not {size:,}")
    return out


def _zstd_frame_length(zstd: ModuleType, frame: memoryview) -> int:
    """Bytes of the zstd frame at the start of ``frame`` (header, blocks, checksum); -1 if cut off."""
    at = zstd.frame_header_size(frame)
    while at + 3 <= len(frame):
        block = int.from_bytes(frame[at:at + 3], "little")
        kind, length = (block >> 1) & 3, block >> 3
        if kind == 3:
            raise zstd.ZstdError("a reserved block type")
        at += 3 + (1 if kind == 1 else length)
        if block & 1:  # the last block
            return at + (4 if frame[4] & 0x04 else 0)
    return -1


def _stored_axes(extensions: bytes, source: str) -> str:
    """The axes the splats are stored in: RUB, unless Adobe's coordinate-system record names others."""
    axes, at = "RUB", 0
    while at < len(extensions):
        if at + 8 > len(extensions):
            raise SplatFileError.about(source, "is damaged: its extension records end in the middle of one")
        kind, length = struct.unpack_from("<II", extensions, at)
        if at + 8 + length > len(extensions):
            raise SplatFileError.about(source, f"is damaged: extension record {kind:#010x} declares {length:,} "
                                       "bytes, more than the file has")
        if kind == COORDINATE_SYSTEM_EXTENSION and length >= 4:
            code = struct.unpack_from("<I", extensions, at + 8)[0]
            if code not in AXES_CODES:
                raise SplatFileError.about(source, f"stores its splats in coordinate system {code} (Adobe's "
                                           "extension); we convert only RUB (4) and RDF (6)")
            axes = AXES_CODES[code]
        at += 8 + length
    return axes


def _unpack(header: Header, arrays: dict[str, memoryview], source: str) -> Gaussians:
    """The splats of the six arrays, in the file's axes."""
    n = header.count

    def array(name: str, width: int) -> np.ndarray:
        return np.frombuffer(arrays[name], np.uint8).reshape(n, width)

    if header.version == 1:
        means = np.frombuffer(arrays["positions"], "<f2").reshape(n, 3).astype(np.float32)
        if not np.isfinite(means).all():
            raise SplatFileError.about(source, "is damaged: some of its half-float positions are not numbers")
    else:
        wide = np.zeros((n * 3, 4), np.uint8)
        wide[:, 1:] = array("positions", 9).reshape(-1, 3)  # the 24 bits high in an int32: its sign
        means = (wide.view("<i4") >> 8).reshape(n, 3).astype(np.float32) * np.float32(2.0**-header.fractional_bits)
    rotations = array("rotations", 4 if header.version >= 3 else 3)
    quats = _quats_smallest_three(rotations) if header.version >= 3 else _quats_first_three(rotations)
    k = SH_COUNTS[header.sh_degree]
    return Gaussians(means=means, scales=SCALE_OF_BYTE[array("scales", 3)], quats=quats,
                     colors=COLOR_OF_BYTE[array("colors", 3)], opacities=OPACITY_OF_BYTE[array("alphas", 1)[:, 0]],
                     sh_rest=SH_OF_BYTE[array("sh", 3 * k).reshape(n, k, 3)] if k else None, color_space="srgb")


def _quats_first_three(rotations: np.ndarray) -> np.ndarray:  # [N, 3] uint8 -> [N, 4] (w, x, y, z)
    xyz = rotations.astype(np.float32) / np.float32(127.5) - 1
    w = np.sqrt(np.maximum(0, 1 - np.einsum("ij,ij->i", xyz, xyz)))
    q = np.column_stack([w, xyz])
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _quats_smallest_three(rotations: np.ndarray) -> np.ndarray:  # [N, 4] uint8 -> [N, 4] (w, x, y, z)
    word = np.ascontiguousarray(rotations).view("<u4")[:, 0]
    largest = word >> 30
    others = []
    for shift in (20, 10, 0):
        field = word >> shift
        value = (field & 0x1FF).astype(np.float32) * np.float32(np.sqrt(0.5) / 511)
        others.append(np.where(field & 0x200, -value, value))
    rebuilt = np.sqrt(np.maximum(0, 1 - (others[0] ** 2 + others[1] ** 2 + others[2] ** 2)))
    xyzw = [np.where(largest == j, rebuilt, np.where(largest > j, others[min(j, 2)], others[max(j - 1, 0)]))
            for j in range(4)]
    return np.stack([xyzw[3], xyzw[0], xyzw[1], xyzw[2]], axis=1)
