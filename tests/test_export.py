"""Export: ONNX (checked with onnxruntime) and TorchScript (reloaded) against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_one_line_error, run_job
from fixtures_app import tiny_ckpts  # noqa: F401

from depth_lightning.inference.export import example_images, export_onnx, export_torchscript


def reference(ckpt, images) -> np.ndarray:
    """PyTorch's depth at 55x74 through the API (not the exported graph's wrapper)."""
    from depth_lightning.api import DepthPredictor

    p = DepthPredictor.from_checkpoint(ckpt, device="cpu")
    return p.log_depth_batch(images)[p.name][:, 0].numpy()


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_onnx_matches_pytorch_with_a_dynamic_batch(tiny_ckpts, tmp_path, exporter):  # noqa: F811
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")
    from depth_lightning.models.checkpoints import load_stage

    path, used = export_onnx(load_stage(tiny_ckpts[1]), tmp_path / "fine.onnx",
                             exporter=exporter)
    assert used == exporter
    model = onnx.load(str(path))
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("image", "depth")
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    opset = {o.domain: o.version for o in model.opset_import}[""]
    assert dims == ["batch", 3, 228, 304] and opset == (17 if exporter == "legacy" else 18)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # traced with 2
        images = example_images(batch, seed=batch)
        got = session.run(None, {"image": images.numpy()})[0]
        want = reference(tiny_ckpts[1], images)
        rel = float(np.max(np.abs(got - want) / want))
        print(f"ONNX batch {batch}: max relative difference {rel:.1e}")
        assert got.shape == (batch, 55, 74) and rel <= 1e-3


def test_torchscript_reloads_and_equals_pytorch(tiny_ckpts, tmp_path):  # noqa: F811
    import torch

    from depth_lightning.models.checkpoints import load_stage

    path = export_torchscript(load_stage(tiny_ckpts[0]), tmp_path / "coarse.pt")
    module = torch.jit.load(str(path))
    images = example_images(3, seed=7)
    with torch.no_grad():
        got = module(images).numpy()
    rel = float(np.max(np.abs(got - reference(tiny_ckpts[0], images)) / got))
    print(f"TorchScript: max relative difference {rel:.1e}")
    assert got.shape == (3, 55, 74) and rel <= 1e-6


def test_export_command_writes_only_its_file_and_refuses_bad_settings(tiny_ckpts,  # noqa: F811
                                                                       tmp_path):
    pytest.importorskip("onnxruntime")
    res = run_job("export", f"ckpt_path={tiny_ckpts[1]}", "output=d.onnx",
                     cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    from depth_lightning.inference.export import onnx_exporter

    used = onnx_exporter("auto")  # dynamo where onnxscript is installed
    assert "max relative difference to PyTorch" in res.stdout
    assert f"{used} exporter, opset {17 if used == 'legacy' else 18}" in res.stdout
    rel = float(res.stdout.rsplit("PyTorch ", 1)[1].split()[0])
    assert rel <= 1e-3 and [p.name for p in tmp_path.iterdir()] == ["d.onnx"]
    res = run_job("export", f"ckpt_path={tiny_ckpts[1]}", "format=tflite",
                     "output=no/such/dir/d.onnx", cwd=tmp_path)
    assert_one_line_error(res, "format:", "tflite")
    assert [p.name for p in tmp_path.iterdir()] == ["d.onnx"]


def test_onnx_without_its_extra_is_one_line_naming_the_extra(tiny_ckpts, tmp_path,  # noqa: F811
                                                            monkeypatch):
    import sys

    from depth_lightning.errors import DepthLightningError
    from depth_lightning.models.checkpoints import load_stage

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    wanted = r"format=onnx needs the onnx package, in the app extra: pip install " \
             r"'depth_lightning\[app\]'"
    with pytest.raises(DepthLightningError, match=wanted):
        export_onnx(load_stage(tiny_ckpts[0]), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
