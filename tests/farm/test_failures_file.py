"""``predict --failures-file`` and ``--allow-failures``: a run that lists the photos it could not convert.

The farm job passes both so that one unreadable photo does not fail its task (tests/farm/test_flamenco.py
runs that through a worker's command line). Here, in-process and without Blender: the list follows
the latest run, the exit status stays a person's (1 when any photo failed) unless
``--allow-failures`` is given, and a lone photo is listed too.
"""

from __future__ import annotations

import os

import pytest

from sharp_addon.cli import main
from sharp_addon.files import is_temporary


def rows(listing) -> list[list[str]]:
    header, *lines = listing.read_text(encoding="utf-8").splitlines()
    assert header == "index\tphoto\terror"
    return [line.split("\t") for line in lines]


@pytest.mark.torch
def test_the_failures_list_follows_the_latest_run_and_the_exit_status_is_a_persons_by_default(
        tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(photos / "good.png")
    (photos / "bad.jpg").write_bytes(b"\xff\xd8\xff not a JPEG\twith a tab\n")
    listing = tmp_path / "lists" / "failures.txt"  # its folder is made when needed
    base = ["predict", "-i", str(photos), "-o", str(out), "-c", str(tiny_checkpoint), "--device", "cpu",
            "--skip-existing"]

    assert main([*base, "--failures-file", str(listing)]) == 1  # listed, and still a failed run
    (row,) = rows(listing)
    assert row[:2] == ["0", str(photos / "bad.jpg")] and "cannot be read as an image" in row[2]
    assert f"failures: 1 of 2 images, listed in '{listing}'" in capsys.readouterr().out
    assert not [name for name in os.listdir(listing.parent) if is_temporary(name)]

    assert main([*base, "--allow-failures"]) == 0  # the good photo is done (skipped): allowed
    err = capsys.readouterr().err
    assert "1 of 2 images failed" in err and "exit status 0 (--allow-failures): 1 of 2 images are done" in err
    assert listing.exists()  # not named this time: left as it was

    Image.new("RGB", (40, 30)).save(photos / "bad.jpg", format="JPEG")  # the photo replaced
    assert main([*base, "--failures-file", str(listing)]) == 0
    assert not listing.exists()  # nothing failed: the earlier list goes
    assert sorted(os.listdir(out)) == ["bad.ply", "good.ply"]


@pytest.mark.torch
def test_a_lone_photo_is_listed_and_a_run_where_every_photo_failed_fails(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "only.png").write_bytes(b"")
    listing = tmp_path / "out" / "sharp-failures-0-0.txt"
    args = ["predict", "-i", str(tmp_path / "only.png"), "-o", str(tmp_path / "out"), "-c", str(tiny_checkpoint),
            "--device", "cpu", "--allow-failures", "--failures-file", str(listing)]
    assert main(args) == 1
    assert [row[:2] for row in rows(listing)] == [["0", str(tmp_path / "only.png")]]
    assert "1 of 1 images failed" in capsys.readouterr().err


def test_a_folder_as_the_failures_file_is_refused_before_any_work(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    assert main(["predict", "-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                 "--failures-file", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: failures file '{tmp_path}': is a folder, not a file; --failures-file names the file " \
        "that lists the images that failed\n"
    assert not (tmp_path / "out").exists()
