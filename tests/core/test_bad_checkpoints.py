"""A corpus of bad checkpoints (and good ones), run as a user would meet them.

The same discipline as ``test_bad_inputs.py``, for the SHARP weights: every case builds its files
in its own folder, then runs either ``sharp_addon.api.load_predictor(path, device="cpu")`` through a
driver that reports a ``SharpError`` the way the command line does, or the command line itself
(``predict -i <a good small PNG> -o <folder> -c <checkpoint> --device cpu``). A case whose bytes
reach torch's native reader damaged, whose pickle would run code if the refusal failed, or that
opens a named pipe runs in a process of its own; the others share one process, so torch is imported
once for them (``tests/support/corpus_runs.py``). Every process has a time limit, a 4 GB
address-space limit and numpy's RuntimeWarnings turned into errors. Then:

- the exit status is 0 (success) or 1 (a user error);
- an error is ONE line on stderr, starting with "error: ", naming the checkpoint and saying what
  is wrong in the user's terms (no "Traceback" anywhere, no torch internals where they mislead);
- the case's folder is exactly as before: a failing ``predict`` writes nothing, does not even
  create its output folder, and an existing one keeps its files; a refused pickle ran no code.

Needs torch (the good checkpoints are built with it, and loading is what is tested).
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sharp_addon import ply
from tests.support.bad_files import (
    HAS_FIFO,
    IS_ROOT,
    Planted,
    edited,
    encoded,
    fifo,
    good_state_dict,
    integers,
    put,
    saved,
    with_nan,
    with_wrong_shape,
    writable_again,
    zip_not_torch,
)
from tests.support.corpus_runs import Outcome, Run, listing, run_alone, run_batch

# 60 cases that import torch: 15 processes of their own and one shared by the rest
pytestmark = [pytest.mark.torch, pytest.mark.slow, pytest.mark.corpus]

API_DRIVER = """
import sys
from sharp_addon.api import load_predictor
from sharp_addon.errors import SharpError
try:
    predictor = load_predictor(sys.argv[1], device="cpu")
except SharpError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
print(f"loaded {predictor.source} on {predictor.device.type} ({predictor.dtype})")
"""
CLI_DRIVER = "import sys; from sharp_addon.cli import main; sys.exit(main(sys.argv[1:]))"

NOT_PLAIN = ("is not a plain weights file", "not loaded, for safety")
NEVER_SAYS_FOR_PICKLES = ("truncated", "weights_only", "weights only")


@dataclass(frozen=True)
class Case:
    make: Callable[[Path, Path], str]  # (case folder, a good checkpoint) -> the checkpoint path to give
    status: int = 1  # 0: success, 1: user error
    names: str = ""  # the path the error line must name, relative to the case folder ("" for the checkpoint)
    says: tuple[str, ...] = ()  # what the error line must contain
    never: tuple[str, ...] = ()  # what it must not contain
    xfail: str = ""  # a known bug: the case fails until it is fixed
    skip: str = ""
    alone: str = ""  # why it needs a process of its own (it could crash, hang or change a shared one)


# why a case gets a process of its own
NATIVE = "damaged bytes into torch's native reader"
PLANTED = "a pickle that runs code if the refusal fails"
PIPE = "opens a named pipe, which can block"


# ---- the corpus -----------------------------------------------------------------------------------

UNREADABLE = ("not a readable PyTorch checkpoint",)
CASES: dict[str, Case] = {
    # paths that are not checkpoint files
    "missing": Case(lambda d, g: str(d / "sharp.pt"), names="sharp.pt", says=("no such file",)),
    "folder": Case(lambda d, g: (d / "weights.pt").mkdir() or str(d / "weights.pt"), names="weights.pt",
                   says=("is a folder, not a checkpoint file",)),
    "named-pipe": Case(lambda d, g: fifo(d, "sharp.pt"), names="sharp.pt", says=("is not a file",),
                       skip="" if HAS_FIFO else "no named pipes here", alone=PIPE),
    "no-read-permission": Case(lambda d, g: (put(d, "sharp.pt", g.read_bytes()), (d / "sharp.pt").chmod(0))[0],
                               names="sharp.pt", says=("Permission denied",),
                               skip="root reads anything" if IS_ROOT else ""),
    # files that are not torch checkpoints at all
    "empty-file": Case(lambda d, g: put(d, "sharp.pt", b""), names="sharp.pt", says=("is empty (0 bytes)",),
                       never=("_use_new_zipfile_serialization",)),
    "text-file": Case(lambda d, g: put(d, "sharp.pt", b"version https://git-lfs.github.com/spec/v1\noid sha256:0\n"),
                      names="sharp.pt", says=("is a Git LFS pointer, not the weights",),
                      never=("_use_new_zipfile_serialization",)),
    "zip-not-torch": Case(lambda d, g: zip_not_torch(d, "sharp.pt"), names="sharp.pt", says=UNREADABLE, alone=NATIVE),
    # a good checkpoint, cut short
    "truncated-100-bytes": Case(lambda d, g: put(d, "sharp.pt", g.read_bytes()[:100]), names="sharp.pt",
                                says=(*UNREADABLE, "truncated"), alone=NATIVE),
    "truncated-half": Case(lambda d, g: put(d, "sharp.pt", (lambda b: b[: len(b) // 2])(g.read_bytes())),
                           names="sharp.pt", says=(*UNREADABLE, "truncated"), alone=NATIVE),
    "truncated-last-byte": Case(lambda d, g: put(d, "sharp.pt", g.read_bytes()[:-1]), names="sharp.pt",
                                says=(*UNREADABLE, "truncated"), alone=NATIVE),
    # pickles holding Python objects: refused by the safe loader, never run
    "pickle-numpy-array": Case(lambda d, g: saved(d, "sharp.pt", np.arange(6.0)), names="sharp.pt",
                               says=(*NOT_PLAIN, "numpy"), never=NEVER_SAYS_FOR_PICKLES),
    "pickle-training-args": Case(lambda d, g: saved(d, "sharp.pt", {"state_dict": good_state_dict(g),
                                                                    "args": argparse.Namespace(lr=1e-4)}),
                                 names="sharp.pt", says=(*NOT_PLAIN, "argparse.Namespace"),
                                 never=NEVER_SAYS_FOR_PICKLES),
    "pickle-that-would-write-a-file": Case(lambda d, g: saved(d, "sharp.pt", {"x": Planted(d / "planted")}),
                                           names="sharp.pt", says=NOT_PLAIN, never=NEVER_SAYS_FOR_PICKLES,
                                           alone=PLANTED),
    "plain-pickle-that-would-write-a-file": Case(  # pickle.dump, not torch.save: no zip around it
        lambda d, g: put(d, "sharp.pt", pickle.dumps({"x": Planted(d / "planted")})), names="sharp.pt",
        says=NOT_PLAIN, never=(*NEVER_SAYS_FOR_PICKLES, "_use_new_zipfile_serialization"), alone=PLANTED),
    # torch files of the wrong content
    "list-of-tensors": Case(lambda d, g: saved(d, "sharp.pt", list(good_state_dict(g).values())), names="sharp.pt",
                            says=("holds list, not a state dict of tensors",)),
    "dict-with-a-number": Case(  # the weights plus a training counter
        lambda d, g: saved(d, "sharp.pt", {**good_state_dict(g), "epoch": 3}), names="sharp.pt",
        says=("entries that are not tensors: 'epoch' (int)",)),
    "wrong-keys": Case(lambda d, g: saved(d, "sharp.pt", {"encoder.weight": __import__("torch").zeros(3, 3)}),
                       names="sharp.pt", says=("not a SHARP checkpoint (1 tensors",)),
    "empty-dict": Case(lambda d, g: saved(d, "sharp.pt", {}), names="sharp.pt", says=("not a SHARP checkpoint",)),
    "one-tensor-missing": Case(lambda d, g: saved(d, "sharp.pt", edited(g, lambda sd: dict(list(sd.items())[1:]))),
                               names="sharp.pt", says=("does not match the SHARP network", "1 missing: ")),
    "one-tensor-extra": Case(lambda d, g: saved(d, "sharp.pt", edited(g, lambda sd: {
        **sd, "head.extra": __import__("torch").zeros(2)})), names="sharp.pt",
        says=("does not match the SHARP network", "1 unexpected: head.extra")),
    "one-tensor-wrong-shape": Case(lambda d, g: saved(d, "sharp.pt", edited(g, with_wrong_shape)), names="sharp.pt",
                                   says=("does not match the SHARP network", "1 wrong shape: ", "(expected [")),
    "tensor-with-nan": Case(lambda d, g: saved(d, "sharp.pt", edited(g, with_nan)), names="sharp.pt",
                            says=("1 tensors hold NaN or Inf values",)),
    "integer-tensors": Case(lambda d, g: saved(d, "sharp.pt", edited(g, integers)), names="sharp.pt",
                            says=("tensors are not floating point",)),
    # good checkpoints
    "good": Case(lambda d, g: put(d, "sharp.pt", g.read_bytes()), status=0),
    "good-nested-in-state-dict": Case(lambda d, g: saved(d, "sharp.pt", {"state_dict": good_state_dict(g)}),
                                      status=0),
    "good-half-precision": Case(lambda d, g: saved(d, "sharp.pt", edited(
        g, lambda sd: {k: v.half() for k, v in sd.items()})), status=0),
    "good-legacy-format": Case(  # torch's pre-1.6 serialisation: tensors only, the safe loader reads it
        lambda d, g: saved(d, "sharp.pt", good_state_dict(g), _use_new_zipfile_serialization=False), status=0),
}
# the command line also runs into an output folder that exists: it must keep exactly what it holds
INTO_EXISTING = ("missing", "truncated-half", "pickle-numpy-array", "one-tensor-wrong-shape", "tensor-with-nan",
                 "good")
SURFACES = ("api", "cli")


def params() -> list:
    out = []
    for name, case in CASES.items():
        for surface in (*SURFACES, *(("cli-into-existing",) if name in INTO_EXISTING else ())):
            marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
            out.append(pytest.param(name, surface, id=f"{name}-{surface}", marks=marks))
    return out


# ---- running a case -------------------------------------------------------------------------------


@dataclass
class Ran:
    """A case's folder, the checkpoint it gave, the folder before and after the run, and what the run gave."""

    d: Path
    checkpoint: str
    before: dict
    after: dict
    result: Outcome


def prepared(name: str, surface: str, base: Path, good: Path) -> tuple[Path, str, Run]:
    d = base / "case"
    d.mkdir(parents=True)
    checkpoint = CASES[name].make(d, good)
    if surface == "api":
        args, code = [checkpoint], API_DRIVER
    else:
        args = ["predict", "-i", put(d, "photo.png", encoded("PNG")), "-o", str(d / "out"), "-c", checkpoint,
                "--device", "cpu"]
        code = CLI_DRIVER
        if surface == "cli-into-existing":
            put(d, "out/old.ply", b"precious")
    return d, checkpoint, Run(code, tuple(args), base / "torch-home")


def selected(request: pytest.FixtureRequest) -> list[tuple[str, str]]:
    """The (case, surface) pairs of ``test_checkpoint`` that this session runs (after -k and -m)."""
    return [(item.callspec.params["name"], item.callspec.params["surface"]) for item in request.session.items
            if getattr(item, "originalname", "") == "test_checkpoint"
            and getattr(item, "module", None) is request.module]


@pytest.fixture(scope="module")
def shared_runs(request, tmp_path_factory, tiny_checkpoint) -> dict[str, Ran]:
    """Every selected case that nothing can crash, run in one shared process (torch imported once)."""
    pairs = [(n, s) for n, s in selected(request) if not CASES[n].alone and not CASES[n].skip]
    root = tmp_path_factory.mktemp("checkpoints")
    cases = {f"{n}-{s}": prepared(n, s, root / f"{n}-{s}", tiny_checkpoint) for n, s in pairs}
    befores = {key: listing(d) for key, (d, _, _) in cases.items()}
    try:
        outcomes = run_batch({key: run for key, (_, _, run) in cases.items()}, root / "batches")
        afters = {key: listing(d) for key, (d, _, _) in cases.items()}
    finally:
        for d, _, _ in cases.values():
            writable_again(d)
    return {key: Ran(d, checkpoint, befores[key], afters[key], outcomes[key])
            for key, (d, checkpoint, _) in cases.items()}


def run_in_own_process(name: str, surface: str, base: Path, good: Path) -> Ran:
    d, checkpoint, run = prepared(name, surface, base, good)
    try:
        before = listing(d)
        result = run_alone(run)
        after = listing(d)
    finally:
        writable_again(d)
    return Ran(d, checkpoint, before, after, result)


@pytest.mark.parametrize(("name", "surface"), params())
def test_checkpoint(request, tmp_path, tiny_checkpoint, name, surface):
    case = CASES[name]
    if case.skip:
        pytest.skip(case.skip)
    if case.alone:
        ran = run_in_own_process(name, surface, tmp_path, tiny_checkpoint)
    else:
        ran = request.getfixturevalue("shared_runs")[f"{name}-{surface}"]
    d, checkpoint, result, out = ran.d, ran.checkpoint, ran.result, ran.d / "out"
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == case.status, output
    changed = {k for k in ran.after if ran.before.get(k) != ran.after[k]} | set(ran.before) - set(ran.after)
    if case.status == 0:
        assert result.stderr == "", result.stderr
        assert result.stdout.startswith(f"loaded {checkpoint} on cpu"), result.stdout
        if surface == "api":
            assert changed == set(), changed
            return
        made = {"out", "out/photo.ply"} if surface == "cli" else {"out/photo.ply"}
        assert changed == made, changed
        assert "photo.png" in result.stdout, result.stdout
        assert len(ply.read_ply(out / "photo.ply")) > 0
        return
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    named = str(d / case.names) if case.names else checkpoint
    assert f"'{named}'" in lines[0], (named, lines[0])
    for text in case.says:
        assert text in lines[0], (text, lines[0])
    for text in case.never:
        assert text not in lines[0], (text, lines[0])
    assert result.stdout == "", result.stdout
    assert changed == set(), "the case folder changed: " + ", ".join(sorted(changed))


def test_the_corpus_is_large_enough():
    assert sum(c.status == 1 for c in CASES.values()) >= 12
    assert sum(c.status == 0 for c in CASES.values()) >= 2
