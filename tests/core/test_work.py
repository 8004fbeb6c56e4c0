"""The one shape of long work (``work.py``): waiting for it, cancelling it, and work done in steps."""

from __future__ import annotations

import pytest

from sharp_addon.errors import Cancelled, OutputError, SharpError
from sharp_addon.work import Finished, Steps, wait


def steps(count: int, fail_at: int | None = None, error: Exception | None = None, closed: list | None = None):
    try:
        for i in range(1, count + 1):
            if i == fail_at:
                raise error or OutputError("step failed")
            yield i, count
    finally:
        if closed is not None:
            closed.append(True)


def test_work_in_steps_ends_with_its_result_and_its_progress_shows():
    work = Steps(steps(3), lambda done, total: f"frame {done} of {total}", result="made")
    seen = []
    while not work.poll():
        seen.append((work.status_text(), work.fraction))
    assert seen == [("frame 1 of 3", 1 / 3), ("frame 2 of 3", 2 / 3), ("frame 3 of 3", 1.0)]
    assert work.result == "made" and work.error is None


def test_a_sharp_error_in_a_step_ends_the_work_with_it_and_cleans_up():
    closed: list = []
    work = Steps(steps(3, fail_at=2, closed=closed), lambda d, t: "")
    assert wait_error(work) == "step failed" and closed == [True] and work.result is None


def test_a_bug_in_a_step_propagates_and_never_reads_as_success():
    closed: list = []
    work = Steps(steps(3, fail_at=2, error=OSError("disk gone"), closed=closed), lambda d, t: "", result="made")
    assert work.poll() is False
    with pytest.raises(OSError, match="disk gone"):
        work.poll()
    assert work.poll() is True and work.result is None and isinstance(work.error, SharpError)
    assert closed == [True]


def test_cancel_closes_the_steps_and_says_so():
    closed: list = []
    work = Steps(steps(5, closed=closed), lambda d, t: "", cancelled="render cancelled: nothing was written")
    work.poll()
    work.cancel()
    assert work.poll() and isinstance(work.error, Cancelled) and str(work.error).startswith("render cancelled")
    assert closed == [True]


def test_wait_honours_a_cancel_callback_and_ctrl_c_cancels_the_work():
    work = Steps(steps(100), lambda d, t: "", cancelled="stopped")
    with pytest.raises(Cancelled, match="stopped"):
        wait(work, cancel=lambda: work.fraction >= 0.05, interval=0)
    assert work.fraction < 0.1

    class Interrupting(Steps):
        def poll(self) -> bool:
            raise KeyboardInterrupt

    interrupted = Interrupting(steps(3), lambda d, t: "")
    with pytest.raises(KeyboardInterrupt):
        wait(interrupted, interval=0)
    assert isinstance(interrupted.error, Cancelled)


def test_wait_reports_the_status_text_as_it_goes():
    lines: list[str] = []
    assert wait(Steps(steps(3), lambda d, t: f"frame {d}", result=7), report=lines.append, report_seconds=0,
                interval=0) == 7
    assert lines and lines[0].startswith("frame ") and lines[0].endswith("%)")


def test_finished_work_ends_at_once():
    work = Finished([1, 2])
    assert work.poll() and wait(work) == [1, 2] and work.fraction == 1.0


def wait_error(work) -> str:
    with pytest.raises(SharpError) as caught:
        wait(work, interval=0)
    return str(caught.value)
