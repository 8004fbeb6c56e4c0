"""The splat web page in a real headless Chromium (WebGL on SwiftShader), served by a real HTTP server
on 127.0.0.1: it loads without console errors and shows, from the photo's camera, what our exact
renderer draws; opened as a local file it says to serve it instead of staying blank."""

from __future__ import annotations

import functools
import http.server
import io
import math
import threading

import numpy as np
import pytest

from sharp_addon.errors import OutputError
from sharp_addon.gaussians import Gaussians, linear_to_srgb
from sharp_addon.web_page import SCENE_NAME, write_web_page
from tests.support.headless_browser import open_page

pytestmark = pytest.mark.slow
W, H, F = 320, 240, 280.0
MIN_PSNR_DB = 30.0  # measured 33.4 dB (Chromium 150 on SwiftShader, 8 Dec 2026), less a margin


def photo_like_scene() -> Gaussians:
    """A photo's worth of opaque splats on a tilted wall 2-3 m away, coloured by smooth waves: every
    pixel of the view is covered, as in a SHARP scene."""
    cols, rows = 96, 72
    u, v = np.meshgrid((np.arange(cols) + 0.5) / cols * W, (np.arange(rows) + 0.5) / rows * H)
    depth = 2.0 + u / W
    x, y = (u - W / 2) / F * depth, (v - H / 2) / F * depth
    means = np.stack([x, y, depth], -1).reshape(-1, 3)
    spacing = (W / cols) / F * depth.reshape(-1, 1)
    colors = np.stack([0.5 + 0.4 * np.sin(u / 37), 0.5 + 0.4 * np.cos(v / 23), 0.5 + 0.3 * np.sin((u + v) / 51)],
                      -1).reshape(-1, 3)
    n = len(means)
    return Gaussians(means=means, scales=np.repeat(spacing, 3, axis=1) * 0.9, quats=np.tile([1.0, 0, 0, 0], (n, 1)),
                     colors=colors ** 2.2, opacities=np.full(n, 0.95), focal_px=F, image_size=(W, H))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    g = photo_like_scene()
    write_web_page(g, folder, title="a test scene")
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield g, folder, f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_the_folder_holds_the_page_the_scene_and_the_viewer_with_its_licences(served):
    _, folder, _ = served
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"index.html", SCENE_NAME, "viewer/spark/spark.module.js", "viewer/spark/LICENSE",
            "viewer/three/three.module.js", "viewer/three/LICENSE"} <= names
    page = (folder / "index.html").read_text()
    assert "<title>a test scene</title>" in page and '"scene": "scene.spz"' in page


def test_the_page_loads_without_errors_and_shows_what_the_exact_renderer_draws(served):
    """PSNR of the page's screenshot against our exact render (sRGB, over the page's black): measured
    33.4 dB; the viewer blends in sRGB and sorts per splat, ours in linear light per pixel."""
    torch = pytest.importorskip("torch", reason="the exact renderer needs PyTorch")
    del torch
    from PIL import Image

    from sharp_addon.cameras import Camera
    from sharp_addon.render import render_gaussians

    g, _, url = served
    run = open_page(url, (W, H))
    assert run.state == "ready" and run.errors == [], (run.state, run.errors, run.messages)
    shot = np.asarray(Image.open(io.BytesIO(run.screenshot)).convert("RGB"), np.float32) / 255
    exact = render_gaussians(g, Camera(F, F, W / 2, H / 2, W, H), device="cpu")
    want = linear_to_srgb(np.clip(exact[..., :3], 0, 1))
    assert shot.shape == want.shape and shot.std() > 0.05
    psnr = 10 * math.log10(1 / float(np.mean((shot - want) ** 2)))
    print(f"web page against the exact renderer: {psnr:.1f} dB")
    assert psnr >= MIN_PSNR_DB


def test_opened_as_a_local_file_the_page_says_to_serve_its_folder(served):
    _, folder, _ = served
    run = open_page((folder / "index.html").as_uri(), (W, H), timeout=30)
    assert run.state == "file" and "python -m http.server" in run.messages, (run.state, run.messages)


def test_a_folder_that_cannot_hold_the_page_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot hold the web page"):
        write_web_page(photo_like_scene(), tmp_path / "file" / "page")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
