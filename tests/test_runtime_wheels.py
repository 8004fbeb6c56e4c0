"""Each GPU runtime choice resolves, per platform and Python, to a complete set: CUDA PyTorch with every
CUDA library wheel it needs (metadata only, nothing downloaded in full where the index offers it).

Blender resolves no dependencies, so an add-on that fetched torch alone would fail with
"libcublas.so.* not found"; the runtime install therefore lets pip resolve everything, and this
checks that what pip resolves for each choice holds torch of the pinned version and its CUDA
libraries. PyTorch's CUDA indexes must be reachable: where they are not (this project's build
machines reach PyPI only), each case says so and skips.
"""

from __future__ import annotations

import pytest

import build_addon
from sharp_addon import runtimes

pytestmark = pytest.mark.slow
TARGETS = ("linux-x64-py311", "linux-x64-py313", "windows-x64-py311", "windows-x64-py313")


@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("key", list(runtimes.RUNTIMES))
def test_a_gpu_runtime_resolves_to_torch_with_all_its_cuda_libraries(key, target_name, tmp_path):
    runtime = runtimes.RUNTIMES[key]
    target = build_addon.target_named(target_name)
    sources = build_addon.Sources(torch_index_url=runtime.index_url, torch_version=runtime.torch_version)
    if not sources.reachable(runtime.index_url):
        pytest.skip(f"{runtime.index_url} cannot be reached from this machine ({sources.describe(target)})")
    resolution = build_addon.resolve(target, sources)  # pip resolves every dependency, or raises
    names = {build_addon.canonical(w.name): w for w in [*resolution.wheels, *resolution.excluded]}
    assert names["torch"].version.split("+")[0] == runtime.torch_version
    assert names["torch"].url.startswith(runtime.index_url.rsplit("/", 1)[0]), names["torch"].url
    if target.platform == "linux-x64":  # Linux CUDA builds take their libraries from separate wheels
        assert any(n.startswith(("nvidia-", "cuda-")) for n in names), sorted(names)
    assert "--no-deps" not in runtimes.install_command(runtime, tmp_path / "runtime")
