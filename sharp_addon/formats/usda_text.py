"""OpenUSD's text syntax (``.usda``), as much of it as a splat file needs: float arrays both ways and a
bounded scanner that finds prims and their properties.

No bpy, no ``pxr`` (Blender's wheels carry none). Two halves:

- Numbers. We write every float as 9 significant digits in one fixed width, ``-1.23456789e-05``
  after a separator (sign or space, digit, point, 8 digits, exponent): 9 digits bring every float32
  back exactly (the nearest 9-digit decimal lies within a tenth of a float32 step of the value),
  and the fixed width lets numpy build and read whole arrays as tables of 2-byte halves, about
  70 ns a number each way, where text parsing (``np.fromstring``) runs at about 2 million numbers a
  second. Arrays in any other spelling (hand-written, other tools) take that slower general path.
- Structure. ``scan`` walks the layer statement by statement: prims (``def``/``over``/``class``),
  properties with their value's byte range, metadata blocks; an array's contents are skipped with
  one search for its closing bracket, so a large file costs one pass. Variant sets and anything
  else it does not know are an error naming the byte offset, never a guess.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

_EXPONENT_RANGE = 99  # two exponent digits: float32 spans 1e-45 .. 3.4e38
_POWERS = 10.0 ** np.arange(-_EXPONENT_RANGE - 8, _EXPONENT_RANGE - 7)  # 10^(e - 8), indexed by e + 99
CHUNK = 1 << 17  # rows a thread formats or reads at a time


def _halves(texts: list[str]) -> np.ndarray:
    return np.frombuffer("".join(texts).encode("ascii"), "<u2")


# a number is a separator (" " first in a tuple, "," after), its sign (" " or "-"), the first digit
# and the point; 8 more digits; "e", the exponent's sign and 2 digits: eight 2-byte halves
_PAIRS = _halves([f"{i:02d}" for i in range(100)])
_DIGITS4 = np.frombuffer("".join(f"{i:04d}" for i in range(10000)).encode("ascii"), "<u4")
_SIGNED_LEADS = {pad: _halves([f"{pad} ", f"{pad}-"]) for pad in " ,"}
_FIRST_DIGITS = _halves([f"{d}." for d in range(10)])
_EXPONENT_SIGNS = _halves(["e+", "e-"])
# each row starts with the end of the row before: "),\n(" for tuples, ",\n  " for plain numbers
_ROW_START = {True: _halves(["),", "\n("]), False: _halves([",\n", "  "])}
_POWERS_BY_EXPONENT = np.concatenate([10.0 ** (np.arange(100) - 8), 10.0 ** (-np.arange(100) - 8)])  # [sign, 2 digits]


def _meaning(texts: np.ndarray) -> np.ndarray:
    """A table from every 2-byte half to its index in ``texts`` (255: not one of them)."""
    table = np.full(65536, 255, np.uint8)
    table[texts] = np.arange(len(texts))
    return table


_PAIR_OF = _meaning(_PAIRS)
_SIGN_OF = {pad: _meaning(halves) for pad, halves in _SIGNED_LEADS.items()}
_FIRST_DIGIT_OF = _meaning(_FIRST_DIGITS)
_EXPONENT_SIGN_OF = _meaning(_EXPONENT_SIGNS)
_ARRAY_TEXT = b"0123456789+-.eE,() \t\r\n"  # all an array of numbers may hold
_TO_SPACES = bytes.maketrans(b"(),", b"   ")


# ---- numbers -----------------------------------------------------------------------------------


def _number_halves(values: np.ndarray, pad: str, out: np.ndarray) -> None:  # [M] float32 -> out [M, 8] uint16
    """Each value as ``<pad>±d.dddddddde±XX``: the nearest 9-significant-digit decimal (float32 exactly)."""
    magnitude = np.abs(values)
    a = magnitude.astype(np.float64)
    magnitude[magnitude == 0] = 1  # 0 is written 0.00000000e+00
    e = np.floor(np.log10(magnitude)).astype(np.int32)  # may miss by one: fixed below
    m = np.rint(a / _POWERS[e + _EXPONENT_RANGE])
    for _ in range(2):
        off = np.flatnonzero((m >= 1e9) | ((m < 1e8) & (a > 0)))  # log10 missed, or rounding carried
        if not off.size:
            break
        e[off] += np.where(m[off] >= 1e9, 1, -1)
        m[off] = np.rint(a[off] / _POWERS[e[off] + _EXPONENT_RANGE])
    high, low = np.divmod(m.astype(np.uint32), np.uint32(10**4))  # d dddd | dddd
    first, middle = np.divmod(high, np.uint32(10**4))
    out[:, 0] = _SIGNED_LEADS[pad][np.signbit(values).view(np.uint8)]
    out[:, 1] = _FIRST_DIGITS[first]
    words = out.view("<u4")  # halves 2-3 and 4-5: four digits each
    words[:, 1] = _DIGITS4[middle]
    words[:, 2] = _DIGITS4[low]
    out[:, 6] = _EXPONENT_SIGNS[(e < 0).view(np.uint8)]
    out[:, 7] = _PAIRS[np.abs(e)]


def array_parts(arrays: list[np.ndarray], threads: int = 2) -> list[list[bytes | memoryview]]:
    """The text of each array (float32 [N, width], or [N]) as a USD array value, ``[`` to ``]``, one element
    a line in the fixed width; as pieces to join (the large middle one is not copied). All the arrays'
    rows are formatted in parts on ``threads`` threads."""
    texts: list[list[bytes | memoryview]] = []
    work: list[tuple[np.ndarray, np.ndarray]] = []
    for values in arrays:
        v = np.asarray(values, dtype=np.float32)
        v = v.reshape(len(v), -1)
        n, width = v.shape
        if n == 0:
            texts.append([b"[]"])
            continue
        tuples = width > 1
        halves = np.empty((n, 2 + 8 * width), "<u2")
        halves[:, 0:2] = _ROW_START[tuples]
        work += [(v[i:i + CHUNK], halves[i:i + CHUNK]) for i in range(0, n, CHUNK)]
        text = memoryview(halves.data).cast("B")
        texts.append([b"[", text[2:], b")\n]"] if tuples else [b"[", text[1:], b"\n]"])

    def fill(job: tuple[np.ndarray, np.ndarray]) -> None:
        v, halves = job
        for j in range(v.shape[1]):
            _number_halves(v[:, j], " " if j == 0 else ",", halves[:, 2 + 8 * j:10 + 8 * j])

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        list(pool.map(fill, work))
    return texts


def _in_parts(work: Callable[[slice], object], n: int, threads: int) -> list:
    """``work`` over row ranges of at most CHUNK, on ``threads`` threads (numpy lets go of the GIL)."""
    parts = [slice(i, min(n, i + CHUNK)) for i in range(0, n, CHUNK)]
    if threads <= 1 or len(parts) == 1:
        return [work(p) for p in parts]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(work, parts))


def _fixed_width(data: bytes, start: int, end: int, width: int) -> np.ndarray | None:  # -> [N, width] float32
    """The array ``array_parts`` wrote (``data[start:end]``, inside the brackets), or None if it is spelled
    otherwise."""
    tuples = width > 1
    skipped, tail = (b"),", b")\n") if tuples else (b",", b"\n")  # the first row's start, after the last
    row = 2 * (2 + 8 * width)
    size = end - start - len(tail) + len(skipped)
    if size < row or size % row or data[end - len(tail):end] != tail:
        return None
    first = start - len(skipped)  # where row 0 would start
    out = np.empty((size // row, width), np.float32)

    def read(part: slice) -> bool:
        text = np.empty((part.stop - part.start) * row, np.uint8)  # aligned, and the chunk's own
        known = len(skipped) if part.start == 0 else 0
        text[:known] = np.frombuffer(skipped[:known], np.uint8)
        text[known:] = np.frombuffer(data, np.uint8, len(text) - known, first + part.start * row + known)
        halves = text.view("<u2").reshape(-1, 2 + 8 * width)
        if not (halves[:, :2] == _ROW_START[tuples]).all():
            return False
        return all(_number_values(halves[:, 2 + 8 * j:10 + 8 * j], " " if j == 0 else ",", out[part, j])
                   for j in range(width))

    return out if all(_in_parts(read, len(out), 2)) else None


def _number_values(halves: np.ndarray, pad: str, out: np.ndarray) -> bool:  # [M, 8] uint16 -> out [M] float32
    """The numbers ``_number_halves`` wrote, into ``out``; False where any half is not what it writes."""
    sign = _SIGN_OF[pad][halves[:, 0]]
    first = _FIRST_DIGIT_OF[halves[:, 1]]
    pairs = [_PAIR_OF[halves[:, c]] for c in range(2, 6)]
    exponent_sign, exponent = _EXPONENT_SIGN_OF[halves[:, 6]], _PAIR_OF[halves[:, 7]]
    if max(int(a.max()) for a in (sign, first, exponent_sign, exponent, *pairs)) == 255:
        return False
    value = first * 1e8 + pairs[0] * 1e6 + pairs[1] * 1e4 + pairs[2] * 1e2 + pairs[3]
    value *= _POWERS_BY_EXPONENT[exponent_sign.astype(np.intp) * 100 + exponent]
    value[sign == 1] *= -1
    out[:] = value
    return True


def parse_array(data: bytes, span: tuple[int, int], width: int, fail: Callable[[str], Exception]) -> np.ndarray:
    """The float32 numbers of an array value (``data[span]``, inside its brackets) as [N, width];
    ``fail(problem)`` is raised for text that is not an array of ``width``-tuples (numbers for width 1)."""
    fast = _fixed_width(data, *span, width)
    if fast is not None:
        return fast
    inside = data[span[0]:span[1]]
    if not inside.strip():
        return np.empty((0, width), np.float32)
    if inside.translate(None, _ARRAY_TEXT):
        word = re.search(rb"[^\s,()]*[^0-9+\-.eE\s,()][^\s,()]*", inside)
        raise fail(f"holds {(word.group() if word else inside)[:24].decode('ascii', 'replace')!r}, "
                   "where a finite number belongs")
    b = np.frombuffer(inside, np.uint8)
    opens, closes, commas = (np.flatnonzero(b == ord(c)) for c in "(),")
    if width > 1:
        paired = len(opens) == len(closes) and (opens < closes).all() and (closes[:-1] < opens[1:]).all()
        inner = np.searchsorted(commas, closes) - np.searchsorted(commas, opens) if paired else None
        if inner is None or not (inner == width - 1).all() or len(commas) - inner.sum() != len(opens) - 1:
            raise fail(f"is not a list of {width}-number tuples '(a, b, ...)' separated by commas")
    elif len(opens) or len(closes):
        raise fail("holds tuples '( )' where plain numbers belong")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            numbers = np.fromstring(inside.translate(_TO_SPACES), dtype=np.float64, sep=" ")
        except (DeprecationWarning, ValueError):
            numbers = None
    count = len(opens) * width if width > 1 else len(commas) + 1
    if numbers is None or len(numbers) != count:
        raise fail("holds text that is not a number (two signs, points or exponents in one, or none between commas)")
    with np.errstate(over="ignore"):
        return numbers.astype(np.float32).reshape(-1, width)


# ---- structure ---------------------------------------------------------------------------------


@dataclass
class Property:
    """An attribute or relationship as written in a prim's body."""

    type: str  # "point3f[]", "uniform" dropped; "rel" for relationships
    name: str  # "positions", with any ".timeSamples" / ".connect" suffix
    value: tuple[int, int] | None  # where the value's text lies in the layer (an array: inside its brackets)
    array: bool
    metadata: bytes  # the "( ... )" after the value, b"" if none


@dataclass
class Prim:
    specifier: str  # def, over or class
    type: str  # "" for a typeless prim
    name: str
    parent: Prim | None
    metadata: bytes
    properties: dict[str, Property] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return (self.parent.path if self.parent else "") + "/" + self.name


@dataclass
class Layer:
    data: bytes
    metadata: bytes  # the layer's "( ... )" after "#usda 1.0"
    prims: list[Prim]  # every prim, in file order

    def text(self, prop: Property) -> bytes:
        assert prop.value is not None
        return self.data[prop.value[0]:prop.value[1]]


_SPACE = re.compile(rb"(?:[ \t\r\n]+|#[^\n]*)*")
_PRIM = re.compile(rb'(def|over|class)[ \t]+(?:([A-Za-z_]\w*)[ \t]+)?"([^"\n]*)"')
_PROPERTY = re.compile(rb"(?:(?:uniform|custom|varying|config|prepend|append|add|delete)[ \t]+)*"
                       rb"([A-Za-z_]\w*(?:\[\])?)[ \t]+([A-Za-z_][\w:]*(?:\.[A-Za-z_]\w*)?)[ \t]*(=)?")
_REORDER = re.compile(rb"reorder[ \t]+\w+[ \t]*=[ \t]*\[[^\]]*\]")
_STRINGS = (rb'"""(?:[^"\\]|\\.|"(?!""))*"""|' rb"'''(?:[^'\\]|\\.|'(?!''))*'''|"
            rb'"(?:[^"\\\n]|\\.)*"|' rb"'(?:[^'\\\n]|\\.)*'|@@@.*?@@@|@[^@\n]*@")
_SCALAR = re.compile(_STRINGS + rb"|<[^>\n]*>|[^\s()\[\]{},]+", re.S)
_BALANCED = re.compile(_STRINGS + rb"|#[^\n]*|[()\[\]{}]", re.S)
_CLOSERS = {ord("("): ord(")"), ord("["): ord("]"), ord("{"): ord("}")}
MAX_DEPTH = 64  # nesting of brackets, and of prims
_TEXT_TYPES = ("string", "token", "asset", "rel", "dictionary", "opaque", "pathExpression")


def scan(data: bytes, fail: Callable[[str], Exception]) -> Layer:
    """The prims and properties of a ``.usda`` layer; ``fail(problem)`` is raised where it is not one we read."""
    if not data.startswith(b"#usda "):
        raise fail("is not an ASCII USD file: it does not start with '#usda 1.0'")
    newline = data.find(b"\n")
    pos = _skip_space(data, len(data) if newline < 0 else newline)
    metadata, pos = _optional_block(data, pos, fail)
    prims: list[Prim] = []
    parent: Prim | None = None
    depth = 0
    while True:
        pos = _skip_space(data, pos)
        if pos >= len(data):
            if parent is not None:
                raise fail(f"ends inside prim {parent.path} (a truncated file)")
            return Layer(data, metadata, prims)
        if data[pos] == ord("}") and parent is not None:
            parent, depth, pos = parent.parent, depth - 1, pos + 1
            continue
        prim = _PRIM.match(data, pos)
        if prim:
            parent, pos = _open_prim(data, prim, parent, fail)
            prims.append(parent)
            depth += 1
            if depth > MAX_DEPTH:
                raise fail(f"nests prims more than {MAX_DEPTH} deep")
            continue
        if parent is None:
            raise fail(f"has {_snippet(data, pos)!r} at byte {pos:,} where a prim ('def ...') belongs")
        reorder = _REORDER.match(data, pos)
        if reorder:
            pos = reorder.end()
            continue
        declared = _PROPERTY.match(data, pos)
        if not declared:
            raise fail(f"has {_snippet(data, pos)!r} at byte {pos:,} in prim {parent.path}, which this reader "
                       "does not parse (variant sets, or not USD text)")
        prop, pos = _property(data, declared, fail)
        parent.properties[prop.name] = prop


def _open_prim(data: bytes, match: re.Match[bytes], parent: Prim | None,
               fail: Callable[[str], Exception]) -> tuple[Prim, int]:
    """The prim a ``def``/``over``/``class`` line opens, and where its body starts."""
    specifier, type_name, name = (g.decode("utf-8", "replace") if g else "" for g in match.groups())
    metadata, pos = _optional_block(data, _skip_space(data, match.end()), fail)
    pos = _skip_space(data, pos)
    if data[pos:pos + 1] != b"{":
        raise fail(f"has no '{{' after prim '{name}' at byte {pos:,} (a truncated or damaged file)")
    return Prim(specifier, type_name, name, parent, metadata), pos + 1


def _property(data: bytes, declared: re.Match[bytes], fail: Callable[[str], Exception]) -> tuple[Property, int]:
    """One property statement: its type, name, value's place and metadata; and where the next statement starts."""
    type_name, name = declared.group(1).decode(), declared.group(2).decode()
    pos, value, array = declared.end(), None, False
    if declared.group(3):
        pos = _skip_space(data, pos)
        opener = data[pos:pos + 1]
        if opener == b"[" and not type_name.startswith(_TEXT_TYPES):
            end = data.find(b"]", pos)
            if end < 0:
                raise fail(f"has an array '{name}' that is never closed (a truncated file)")
            value, array, pos = (pos + 1, end), True, end + 1
        elif opener in (b"[", b"(", b"{"):
            end = _balanced_end(data, pos, fail)
            value, array, pos = (pos + 1, end - 1), opener == b"[", end
        else:
            scalar = _SCALAR.match(data, pos)
            if not scalar:
                raise fail(f"has no value after '{name} =' at byte {pos:,}")
            value, pos = scalar.span(), scalar.end()
    metadata, pos = _optional_block(data, _skip_space(data, pos), fail)
    return Property(type_name, name, value, array, metadata), pos


def _optional_block(data: bytes, pos: int, fail: Callable[[str], Exception]) -> tuple[bytes, int]:
    """A metadata block "( ... )" at ``pos`` (b"" if none) and where it ends."""
    if data[pos:pos + 1] != b"(":
        return b"", pos
    end = _balanced_end(data, pos, fail)
    return data[pos + 1:end - 1], end


def _balanced_end(data: bytes, pos: int, fail: Callable[[str], Exception]) -> int:
    """Just past the bracket that closes the one at ``pos``, strings and comments skipped."""
    stack: list[int] = []
    for token in _BALANCED.finditer(data, pos):
        c = data[token.start()]
        if c in _CLOSERS:
            stack.append(_CLOSERS[c])
            if len(stack) > MAX_DEPTH:
                raise fail(f"nests brackets more than {MAX_DEPTH} deep at byte {token.start():,}")
        elif c in b")]}":
            if not stack or stack.pop() != c:
                raise fail(f"has an unmatched '{chr(c)}' at byte {token.start():,}")
            if not stack:
                return token.end()
    raise fail(f"has a '{chr(data[pos])}' at byte {pos:,} that is never closed (a truncated file)")


def _skip_space(data: bytes, pos: int) -> int:
    return _SPACE.match(data, pos).end()  # type: ignore[union-attr]  # matches the empty string at least


def _snippet(data: bytes, pos: int) -> str:
    return data[pos:pos + 40].split(b"\n")[0].decode("utf-8", "replace")
