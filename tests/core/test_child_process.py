"""Child processes (``child_process.py``) with real processes: lines taken without waiting, a kill that
ends everything the child started, no child outliving its host, messages from its stderr."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sharp_addon.child_process import ChildProcess, child_env, run_to_end
from sharp_addon.errors import DependencyError
from tests.support.blender_data import process_gone

SLEEPER = "import time; time.sleep(60)"
# a child that starts a grandchild, says its pid, then waits
PARENT = ("import subprocess, sys, time; "
          f"p = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}]); print(p.pid, flush=True); time.sleep(60)")


def first_line(child: ChildProcess, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        lines = list(child.take())
        if lines:
            return lines[0]
        assert time.monotonic() < deadline and not child.ended, "the child said nothing"
        time.sleep(0.01)


def gone_within(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_lines_are_taken_as_they_come_and_the_end_is_seen():
    child = ChildProcess([sys.executable, "-c", "print('one', flush=True); import time; time.sleep(0.3); "
                          "print('two')"], env=child_env())
    try:
        assert first_line(child) == "one"
        assert list(child.take()) == [] and not child.ended  # nothing more yet: no waiting
        assert child.wait(30) == 0
        assert child.take_rest() == ["two"] and child.ended
    finally:
        child.close()


def test_a_kill_ends_the_child_and_everything_it_started():
    child = ChildProcess([sys.executable, "-c", PARENT], env=child_env(), own_group=True)
    grandchild = int(first_line(child))
    assert not process_gone(grandchild)
    child.kill()
    assert not child.alive and gone_within(grandchild)


def test_no_child_outlives_its_host():
    host = (f"import sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parents[2])!r}); "
            "from sharp_addon.child_process import ChildProcess; "
            f"c = ChildProcess([sys.executable, '-c', {SLEEPER!r}], own_group=True); print(c.pid, flush=True)")
    done = subprocess.run([sys.executable, "-c", host], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert gone_within(int(done.stdout.split()[0]))  # killed when the host exited


def test_messages_take_the_last_lines_of_stderr():
    code = ("import sys\n"
            "sys.stderr.write('x' * 200000 + '\\n')\n"  # far more than is read for a message
            "for i in range(5): print('line', i, file=sys.stderr)\n")
    child = ChildProcess([sys.executable, "-c", code], env=child_env())
    try:
        child.wait(30)
        assert child.stderr_tail() == "line 2 | line 3 | line 4"
        assert all(len(line) < 100_000 for line in child.stderr_lines())  # only the tail was read
    finally:
        child.close()


def test_a_short_child_past_its_time_is_stopped():
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.5 s"):
        run_to_end([sys.executable, "-c", SLEEPER], timeout=0.5)
    assert time.monotonic() - t0 < 30


def test_a_program_that_cannot_start_is_named(tmp_path):
    with pytest.raises(DependencyError, match=r"no-python'?: no such file"):
        ChildProcess([str(tmp_path / "no-python"), "-c", "pass"])
    script = tmp_path / "notes.txt"
    script.write_text("not a program\n")
    with pytest.raises(DependencyError, match="is not executable"):
        run_to_end([str(script)], timeout=10)
