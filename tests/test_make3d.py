"""Make3D from files written in its layout (no real Make3D file is at hand): the reader, the
400 / 134 split by folder and the C1 protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from omegaconf import OmegaConf
from PIL import Image

from depth_lightning.data.make3d import Make3D
from depth_lightning.errors import DataError
from depth_lightning.evaluation.protocols import EvalProtocol
from depth_lightning.geometry import MAKE3D


def write_pair(folder_img: Path, folder_depth: Path, name: str, seed: int) -> np.ndarray:
    """A portrait photo 1704x2272 (small here: 170x227) and its 55x305x4 laser grid."""
    rng = np.random.default_rng(seed)
    folder_img.mkdir(parents=True, exist_ok=True)
    folder_depth.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (227, 170, 3), np.uint8)).save(
        folder_img / f"img-{name}.jpg")
    grid = np.zeros((55, 305, 4))  # as the .mat files hold it: 55 x 305
    depth = rng.uniform(2.0, 80.0, (55, 305))
    grid[..., 3] = depth
    scipy.io.savemat(folder_depth / f"depth_sph_corr-{name}.mat", {"Position3DGrid": grid})
    return depth


@pytest.fixture(scope="module")
def make3d_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("make3d")
    for i in range(3):
        write_pair(root / "Train400Img", root / "Train400Depth", f"train{i}", i)
    write_pair(root / "Test134", root / "Test134Depth", "test0", 10)
    return root


def test_frames_are_at_the_protocols_size_with_the_fourth_channel_as_depth(make3d_root):
    m = Make3D(make3d_root)
    assert len(m) == 4
    f = m[0]
    assert f["image"].shape == (*MAKE3D.frame, 3) and f["depth"].shape == MAKE3D.frame
    grid = scipy.io.loadmat(m.pairs[0][1])["Position3DGrid"][..., 3]
    # nearest neighbour copies laser values only; portrait photo, so the grid is transposed
    assert set(np.unique(f["depth"]).tolist()) <= set(np.unique(grid.astype(np.float32)).tolist())
    assert f["depth"][0, 0] == np.float32(grid[0, 0])
    assert f["depth"][-1, 0] == np.float32(grid[0, -1])  # the grid's row runs down the photo


def test_the_official_split_is_the_releases_folders(make3d_root):
    train, test = Make3D(make3d_root).official_split()
    assert len(train) == 3 and len(test) == 1


def test_c1_scores_depths_below_70_m_only():
    cfg = OmegaConf.load(Path(__file__).parents[1] / "depth_lightning" / "conf" / "eval" /
                         "make3d_c1.yaml")
    c1 = EvalProtocol.from_config(OmegaConf.to_container(cfg))
    gt = torch.tensor([[[5.0, 69.0], [71.0, 0.0]]])
    assert c1.valid_mask(gt, MAKE3D.__class__("t", (2, 2), (2, 2), (2, 2), (1, 1))).tolist() \
        == [[[True, True], [False, False]]]


def test_a_file_that_is_not_a_laser_map_is_refused(tmp_path):
    write_pair(tmp_path / "img", tmp_path / "d", "x", 0)
    scipy.io.savemat(tmp_path / "d" / "depth_sph_corr-x.mat", {"Other": np.zeros(3)})
    with pytest.raises(DataError, match="no Position3DGrid"):
        Make3D(tmp_path)[0]
    with pytest.raises(DataError, match="no Make3D pairs"):
        Make3D(tmp_path / "img")
