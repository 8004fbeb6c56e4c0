"""Downloading the weights against a real HTTP server on 127.0.0.1: complete, interrupted and resumed,
corrupted, refused, unreachable, silent, cancelled; the same check for a file the user picks; the
``download`` command; the child process a host follows without blocking."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from sharp_addon import dependencies, download
from sharp_addon.cli import main
from sharp_addon.download import Expected
from sharp_addon.errors import Cancelled, CheckpointError, DownloadError, OutputError
from sharp_addon.work import wait
from tests.conftest import HAS_TORCH
from tests.support.http_server import BLOCK, NAME, closed_port, corrupted


def nothing_left(target: Path) -> bool:
    return not target.exists() and not download.part_path(target).exists()


# ---- fetch --------------------------------------------------------------------------------------------


def test_a_download_is_checked_then_installed_under_its_name(server, payload, tmp_path):
    target = tmp_path / "models" / "tiny.pt"
    seen: list[tuple[str, int, int | None]] = []
    installed = download.fetch(server.url, target, progress=lambda *a: seen.append(a))
    assert target.read_bytes() == payload and not download.part_path(target).exists()
    assert installed.path == target and installed.size == len(payload) and installed.resumed_from == 0
    assert [r["range"] for r in server.requests] == [None]
    fetched = [done for stage, done, total in seen if stage == "download"]
    assert fetched == sorted(fetched) and fetched[-1] == len(payload)
    assert {stage for stage, _, _ in seen} >= {"download", "verify"}
    assert "every checksum of its" in installed.summary
    assert ("valid SHARP checkpoint" in installed.summary) == HAS_TORCH
    assert ("keys and shapes not checked" in installed.summary) != HAS_TORCH


def test_an_interrupted_download_resumes_with_a_range_request(server, payload, tmp_path):
    target = tmp_path / "tiny.pt"
    cut = len(payload) * 2 // 5
    server.drop_after = cut
    with pytest.raises(DownloadError, match=r"the connection broke after .* download again to resume") as e:
        download.fetch(server.url, target, retries=0)
    assert str(download.part_path(target)) in str(e.value)
    assert not target.exists() and download.part_path(target).stat().st_size == cut
    installed = download.fetch(server.url, target)
    assert [(r["range"], r["status"]) for r in server.requests] == [(None, 200), (f"bytes={cut}-", 206)]
    assert server.sent < 1.5 * len(payload)
    assert installed.resumed_from == cut and target.read_bytes() == payload
    assert not download.part_path(target).exists()


def test_a_broken_connection_is_resumed_within_the_same_call(server, payload, tmp_path, monkeypatch):
    monkeypatch.setattr(download.http_fetch, "RETRY_DELAY_SECONDS", 0.0)
    server.drop_after = len(payload) // 3
    installed = download.fetch(server.url, tmp_path / "tiny.pt", retries=1)
    assert [r["status"] for r in server.requests] == [200, 206] and installed.path.read_bytes() == payload


def test_a_server_that_ignores_range_is_answered_by_starting_over(server, payload, tmp_path):
    target = tmp_path / "tiny.pt"
    download.part_path(target).write_bytes(b"left over from some other file" * 10)
    server.ignore_range = True
    download.fetch(server.url, target)
    assert [(r["range"], r["status"]) for r in server.requests] == [("bytes=300-", 200)]
    assert target.read_bytes() == payload


def test_416_means_complete_already_or_start_over(server, payload, tmp_path):
    target = tmp_path / "tiny.pt"
    download.part_path(target).write_bytes(payload)  # an earlier run stopped after the last byte, before its check
    download.fetch(server.url, target)
    assert [r["status"] for r in server.requests] == [416] and server.sent == 0
    assert target.read_bytes() == payload
    other = tmp_path / "other.pt"
    download.part_path(other).write_bytes(payload + b"more than the file on the server")
    download.fetch(server.url, other)
    assert [(r["range"], r["status"]) for r in server.requests[1:]] == [(f"bytes={len(payload) + 32}-", 416),
                                                                        (None, 200)]
    assert other.read_bytes() == payload


def test_a_corrupted_download_is_rejected_and_removed(server, tmp_path):
    target = tmp_path / "tiny.pt"
    target.write_bytes(b"the user's older file")
    server.corrupt = True
    with pytest.raises(DownloadError) as e:
        download.fetch(server.url, target)
    assert re.search(r"the file received is corrupted: its archive entry '.*' fails its CRC-32 checksum; it was "
                     r"removed and nothing was installed", str(e.value)), e.value
    assert target.read_bytes() == b"the user's older file" and not download.part_path(target).exists()


@pytest.mark.parametrize("case", ["size", "sha256", "minimum"])
def test_the_expected_size_hash_and_minimum_are_enforced(server, payload, tmp_path, case):
    target = tmp_path / "tiny.pt"
    expected, says = {"size": (Expected(size=len(payload) + 1), f"holds {len(payload)} bytes, not the"),
                      "sha256": (Expected(sha256="ab" * 32), "its SHA-256 is"),
                      "minimum": (Expected(min_bytes=len(payload) + 1), "is too small")}[case]
    with pytest.raises(DownloadError, match=says):
        download.fetch(server.url, target, expected=expected)
    assert nothing_left(target)
    right = Expected(min_bytes=len(payload), size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    assert download.fetch(server.url, target, expected=right).path.read_bytes() == payload


def test_the_official_name_needs_the_official_size(server, tmp_path):
    with pytest.raises(DownloadError, match="too small to be the official checkpoint"):
        download.fetch(server.url, tmp_path / NAME)
    assert nothing_left(tmp_path / NAME)


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    port = closed_port()
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=rf"cannot reach 127\.0\.0\.1:{port} \(.*\); check the address"):
        download.fetch(f"http://127.0.0.1:{port}/{NAME}", tmp_path / "tiny.pt")
    assert time.monotonic() - t0 < 5 and nothing_left(tmp_path / "tiny.pt")


def test_refusals_and_bad_addresses_are_clear_errors(server, tmp_path):
    with pytest.raises(DownloadError, match=r"the server refused it \(HTTP 404 Not Found\)"):
        download.fetch(server.url + ".old", tmp_path / "tiny.pt")
    with pytest.raises(DownloadError, match="is not an http:// or https:// address"):
        download.fetch("ftp://example.org/x.pt", tmp_path / "tiny.pt")
    assert nothing_left(tmp_path / "tiny.pt")


def test_a_silent_server_times_out_and_the_part_is_kept(server, tmp_path):
    server.stall_after = 3 * BLOCK
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"no data for 0\.5 s.*download again to resume"):
        download.fetch(server.url, tmp_path / "tiny.pt", timeout=0.5, retries=0)
    assert time.monotonic() - t0 < 5
    assert download.part_path(tmp_path / "tiny.pt").stat().st_size == 3 * BLOCK


def test_cancel_keeps_the_part_for_resuming_and_removes_an_empty_one(server, payload, tmp_path):
    target = tmp_path / "tiny.pt"
    server.delay = 0.01
    progress: list[int] = []
    with pytest.raises(Cancelled, match=r"download cancelled: .* kept in .*tiny\.pt\.part'; download again to resume"):
        download.fetch(server.url, target, progress=lambda stage, done, total: progress.append(done),
                       cancel=lambda: bool(progress) and progress[-1] >= 4 * BLOCK)
    kept = download.part_path(target).stat().st_size
    assert not target.exists() and 4 * BLOCK <= kept < len(payload)
    calls = iter([False, True])  # the request is answered, then the cancel comes before the first byte
    with pytest.raises(Cancelled):
        download.fetch(server.url, tmp_path / "empty.pt", cancel=lambda: next(calls))
    assert nothing_left(tmp_path / "empty.pt")  # nothing arrived: no .part is left either
    server.delay = 0.0
    assert download.fetch(server.url, target).resumed_from == kept and target.read_bytes() == payload


def test_an_unwritable_target_is_an_output_error(server, tmp_path):
    (tmp_path / "a file").write_bytes(b"x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        download.fetch(server.url, tmp_path / "a file" / "tiny.pt")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(OutputError, match="is a folder, not a file"):
        download.fetch(server.url, tmp_path / "folder.pt")
    assert server.requests == []  # refused before asking the server


# ---- a file from elsewhere ----------------------------------------------------------------------------


def test_a_picked_file_is_checked_the_same_way(payload, tmp_path):
    good = tmp_path / "picked.pt"
    good.write_bytes(payload)
    assert download.verify_file(good).summary.startswith("valid SHARP" if HAS_TORCH else f"{len(payload) / 1e6:.1f} MB")
    bad = {"cut.pt": payload[: len(payload) // 2], "flipped.pt": corrupted(payload), NAME: payload}
    says = {"cut.pt": "is not a PyTorch checkpoint archive", "flipped.pt": "fails its CRC-32 checksum",
            NAME: "too small to be the official checkpoint"}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=rf"checkpoint '{re.escape(str(tmp_path / name))}': .*{says[name]}"):
            download.verify_file(tmp_path / name)
    with pytest.raises(CheckpointError, match="no such file"):
        download.verify_file(tmp_path / "absent.pt")


@pytest.mark.torch
def test_a_zip_that_is_not_a_sharp_network_is_refused(tmp_path):
    import torch

    torch.save({"just": torch.zeros(3)}, tmp_path / "impostor.pt")
    with pytest.raises(CheckpointError, match="not a SHARP checkpoint"):
        download.verify_file(tmp_path / "impostor.pt")


# ---- the command line ---------------------------------------------------------------------------------


def accepted_download(*args: str) -> int:
    """``sharp download ARGS`` by a user who accepts the weights' licence."""
    return main(["download", "--accept-licence", *args])


def test_the_download_command_needs_the_licence_accepted_before_any_request(server, payload, tmp_path, capsys):
    target = tmp_path / "tiny.pt"
    assert main(["download", "--url", server.url, "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: SHARP's weights are Apple's, licensed under the Apple Machine Learning Research "
                          "Model License Agreement: for non-commercial research only") and err.count("\n") == 1
    assert dependencies.LICENCE_URL in err and "--accept-licence" in err
    assert server.requests == [] and not target.exists() and not download.part_path(target).exists()
    assert accepted_download("--url", server.url, "--to", str(target), "--progress", "none") == 0
    assert target.read_bytes() == payload
    target.unlink()
    (tmp_path / "copy.pt").write_bytes(payload)
    assert main(["download", "--from", str(tmp_path / "copy.pt")]) == 0  # checking a file needs no acceptance


def test_the_download_command_installs_then_finds_it_installed(server, payload, tmp_path, capsys):
    target = tmp_path / "tiny.pt"
    assert accepted_download("--url", server.url, "--to", str(target)) == 0
    out = capsys.readouterr().out
    assert f"installed {target}: " in out and re.search(r"downloading: (.*) of \1 \(100%\)", out), out
    assert accepted_download("--url", server.url, "--to", str(target)) == 0
    assert "already installed; nothing downloaded" in capsys.readouterr().out
    assert len(server.requests) == 1 and target.read_bytes() == payload


def test_the_download_command_fails_on_one_error_line(tmp_path, capsys):
    port = closed_port()
    assert accepted_download("--url", f"http://127.0.0.1:{port}/x.pt", "--to", str(tmp_path / "x.pt")) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: download 'http://127.0.0.1:{port}/x.pt': cannot reach") and err.count("\n") == 1
    assert main(["download", "--sha256", "beef"]) == 2
    assert "must be 64 hexadecimal digits" in capsys.readouterr().err


def test_the_download_command_speaks_json_lines(server, payload, tmp_path, capsys):
    server.drop_after = len(payload) // 2
    assert accepted_download("--url", server.url, "--to", str(tmp_path / "tiny.pt"), "--progress", "json") == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["event"] for e in events} == {"progress", "done"} and events[-1]["event"] == "done"
    assert events[-1]["path"] == str(tmp_path / "tiny.pt") and events[-1]["size"] == len(payload)
    assert [r["status"] for r in server.requests] == [200, 206]  # resumed by itself after the drop
    assert accepted_download("--url", server.url + ".old", "--to", str(tmp_path / "x.pt"), "--progress", "json") == 1
    out, err = capsys.readouterr()
    last = json.loads(out.splitlines()[-1])
    assert last["event"] == "error" and last["type"] == "DownloadError" and "HTTP 404" in last["message"]
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_the_download_command_checks_a_file_from_elsewhere(payload, tmp_path, capsys):
    (tmp_path / "good.pt").write_bytes(payload)
    (tmp_path / "cut.pt").write_bytes(payload[:1000])
    assert main(["download", "--from", str(tmp_path / "good.pt")]) == 0
    assert f"{tmp_path / 'good.pt'}: " in capsys.readouterr().out
    assert main(["download", "--from", str(tmp_path / "cut.pt")]) == 1
    assert capsys.readouterr().err == (f"error: checkpoint '{tmp_path / 'cut.pt'}': is not a PyTorch checkpoint "
                                       "archive (a zip file): it is cut short, damaged, or another kind of file\n")


def test_without_to_the_command_fills_the_models_folder_the_search_looks_in(server, payload, tmp_path, monkeypatch):
    monkeypatch.setenv(dependencies.ENV_MODELS, str(tmp_path / "models"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(dependencies.ENV_CHECKPOINT, raising=False)
    assert dependencies.find_checkpoint() is None
    assert accepted_download("--url", server.url, "--min-bytes", "0", "--progress", "none") == 0
    assert dependencies.find_checkpoint() == tmp_path / "models" / NAME
    assert dependencies.default_checkpoint_paths() == [tmp_path / "models" / NAME,
                                                       tmp_path / "torch-home" / "hub" / "checkpoints" / NAME]
    assert dependencies.find_checkpoint(models=tmp_path / "elsewhere") is None  # a folder passed in wins
    monkeypatch.delenv(dependencies.ENV_MODELS)
    assert dependencies.download_target() == tmp_path / "torch-home" / "hub" / "checkpoints" / NAME


# ---- followed from a host: a child process ------------------------------------------------------------


def test_a_child_process_download_is_followed_by_polling(server, payload, tmp_path):
    events: list[dict] = []
    process = download.DownloadProcess.download(server.url, tmp_path / "tiny.pt", Expected(), accept_licence=True,
                                                on_event=events.append)
    result = wait(process)
    assert result["path"] == str(tmp_path / "tiny.pt") and (tmp_path / "tiny.pt").read_bytes() == payload
    assert [e["event"] for e in events][-1] == "done" and any(e.get("stage") == "download" for e in events)
    assert not process.alive


def test_cancelling_a_child_process_kills_it_at_once_and_keeps_the_part(server, payload, tmp_path):
    server.delay = 0.02
    process = download.DownloadProcess.download(server.url, tmp_path / "tiny.pt", Expected(), accept_licence=True)
    deadline = time.monotonic() + 30
    while not process.poll() and process.done < 2 * BLOCK and time.monotonic() < deadline:
        time.sleep(0.02)
    process.cancel()
    assert not process.alive  # gone when cancel() returns: the kill is synchronous
    assert isinstance(process.error, Cancelled) and "download again to resume" in str(process.error)
    assert not (tmp_path / "tiny.pt").exists() and 0 < download.part_path(tmp_path / "tiny.pt").stat().st_size
