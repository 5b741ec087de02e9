"""The web demo: answered through gradio_client, and seen in a real headless browser.

`DEMO_SCREENSHOT=docs/demo.png DEMO_CKPT=<a trained fine checkpoint> pytest tests/test_demo.py
-k browser` writes the README's screenshot (default: a tiny untrained checkpoint, a temp file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from browser import find_chromium, free_port, screenshot
from conftest import assert_one_line_error, run_module
from fixtures_app import tiny_ckpts  # noqa: F401
from nyu_files import require_shared_data
from PIL import Image


@pytest.fixture(scope="module")
def served(tiny_ckpts):  # noqa: F811
    """The demo on a free local port, with an example photo shown when the page opens."""
    pytest.importorskip("gradio")
    from depth_lightning.api import DepthPredictor, load_photo
    from depth_lightning.inference.demo import build_app

    photo = require_shared_data() / "nyu_v1_samples" / "rgb" / "00040.png"
    predictor = DepthPredictor.from_checkpoint(os.environ.get("DEMO_CKPT") or tiny_ckpts[1],
                                               device="cpu")
    app = build_app(predictor, example=load_photo(photo))
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", photo, predictor
    app.close()


@pytest.mark.cli  # a web server and its client
def test_the_demo_answers_through_gradio_client(served):
    gradio_client = pytest.importorskip("gradio_client")
    plyfile = pytest.importorskip("plyfile")
    url, photo, predictor = served
    client = gradio_client.Client(url, verbose=False)
    figure, png, ply, glb = client.predict(gradio_client.handle_file(str(photo)),
                                           api_name="/predict")
    with Image.open(figure) as im:
        drawn = np.asarray(im.convert("RGB"))
    assert drawn.shape[1] > 2.5 * drawn.shape[0] and drawn.std() > 20  # three panels
    with Image.open(png) as im:
        mm = np.asarray(im)
    expect = predictor(photo)
    assert mm.dtype == np.uint16 and mm.shape == (480, 640)
    assert np.abs(mm / 1000.0 - expect).max() <= 5e-4  # the API's depth, to the millimetre
    vertex = plyfile.PlyData.read(ply)["vertex"]
    assert len(vertex) == 480 * 640
    assert np.allclose(np.sort(vertex["z"]), np.sort(expect.ravel()), atol=1e-6)
    assert Path(glb).read_bytes()[:4] == b"glTF"


@pytest.mark.skipif(find_chromium() is None, reason="no chromium installed")
def test_the_demo_in_a_headless_browser(served, tmp_path):
    pytest.importorskip("aiohttp")
    url, _, _ = served
    out = Path(os.environ.get("DEMO_SCREENSHOT") or tmp_path / "demo.png")
    ready = "document.querySelectorAll('img').length >= 2 && !!document.querySelector('canvas')"
    screenshot(url, ready, out)
    with Image.open(out) as im:
        page = np.asarray(im.convert("RGB")).astype(int)
    assert page.shape[1] == 1280 and page.shape[0] > 800
    # the depth figure's colour map is on the page (viridis' dark purple and its yellow end)
    purple = (np.abs(page - [68, 1, 84]).sum(-1) < 40).sum()
    yellow = (np.abs(page - [253, 231, 37]).sum(-1) < 60).sum()
    assert purple > 500 and yellow > 20, (purple, yellow)


@pytest.mark.cli
def test_bad_demo_settings_are_one_line(tiny_ckpts, tmp_path):  # noqa: F811
    pytest.importorskip("gradio")
    res = run_module("depth_lightning.demo", f"ckpt_path={tiny_ckpts[0]}", "port=70000",
                     cwd=tmp_path)
    assert_one_line_error(res, "port:", "70000")
    assert list(tmp_path.iterdir()) == []
