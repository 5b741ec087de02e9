"""The bad-input battery: each kind of wrong setting or file, given to train, evaluate, predict,
report and compare as a user would, must end with exactly one `error:` line naming the setting
or file and what is wrong, a non-zero exit status, no traceback, and no run folder or partial
file left behind.

All cases run in one process (`python tests/bad_inputs.py WORKDIR` writes
WORKDIR/results.json), so torch and Lightning start once; tests/test_bad_input.py runs it and
checks every case. Placeholders in the arguments ({data}, {out}, {coarse}, ...) are the files
this script makes first.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FRAMES = 24
SMALL = ["paths.data_dir={data}", "paths.log_dir={out}", "data.batch_size=4",
         "data.num_workers=0", "callbacks.progress_bar=null", "++trainer.fast_dev_run=true"]
SYNTH = [*SMALL, f"data.source.frames={FRAMES}", "model.net.coarse6_units=64"]
FINE = [*SMALL, f"data.source.frames={FRAMES}", "coarse_stage.model.net.coarse6_units=64"]
EVAL = ["paths.data_dir={data}", "paths.log_dir={out}", f"data.source.frames={FRAMES}",
        "data.num_workers=0"]
PRED = ["paths.log_dir={out}"]
KITTI = [*SMALL, "coarse_stage.model.net.coarse6_units=64"]


@dataclass
class Case:
    id: str
    entry: str  # train | evaluate | predict | report | compare
    args: list[str]
    needles: list[str]  # all in the one error line
    result: dict = field(default_factory=dict)


def train(id_: str, args: list[str], *needles: str, base: list[str] = SYNTH) -> Case:
    """A train case: the small-run settings, then the case's own (a later override wins)."""
    return Case(id_, "train", [*base, *args], list(needles))


def fine(id_: str, args: list[str], *needles: str) -> Case:
    return Case(id_, "train", ["+experiment=fine", *FINE, *args], list(needles))


def nyu(id_: str, path: str, *needles: str, extra: tuple[str, ...] = ()) -> Case:
    return Case(id_, "train", ["data=nyu_v2", *SMALL, "model.net.coarse6_units=64",
                               f"data.path={path}", "data.split.kind=all", *extra],
                list(needles))


CASES = [
    # -- resume and checkpoints of train ------------------------------------------------------
    train("resume_missing", ["resume={tmp}/nope"], "resume:", "does not exist"),
    train("resume_file", ["resume={garbage}"], "resume:", "is not a train run folder"),
    train("resume_empty_folder", ["resume={empty_dir}"], "resume:", "not a train run folder"),
    train("ckpt_path_missing", ["ckpt_path={tmp}/nope.ckpt"], "ckpt_path:", "does not exist"),
    train("ckpt_path_folder", ["ckpt_path={empty_dir}"], "ckpt_path:", "is a folder"),
    train("ckpt_path_random_bytes", ["ckpt_path={garbage}"], "ckpt_path:",
          "not a readable checkpoint"),
    train("ckpt_path_pickled_code", ["ckpt_path={pickled}"], "ckpt_path:", "pickled code"),
    train("ckpt_path_pickled_raw", ["ckpt_path={pickled_raw}"], "ckpt_path:", "pickled code"),
    train("ckpt_path_plain_torch", ["ckpt_path={plain}"], "ckpt_path:",
          "not a depth_lightning checkpoint"),
    train("ckpt_path_wrong_stage", ["ckpt_path={fine}"], "ckpt_path:",
          "fine-stage checkpoint, expected coarse"),
    train("ckpt_path_wrong_width", ["ckpt_path={coarse}", "model.net.coarse6_units=32"],
          "ckpt_path:", "different network", "coarse6_units"),
    fine("coarse_ckpt_missing", ["model.coarse_ckpt={tmp}/nope.ckpt"], "model.coarse_ckpt",
         "does not exist"),
    fine("coarse_ckpt_fine", ["model.coarse_ckpt={fine}"], "model.coarse_ckpt",
         "expected coarse"),
    fine("coarse_ckpt_pickled", ["model.coarse_ckpt={pickled}"], "model.coarse_ckpt",
         "pickled code"),
    fine("coarse_ckpt_garbage", ["model.coarse_ckpt={garbage}"], "model.coarse_ckpt",
         "not a readable checkpoint"),
    # -- settings of train -------------------------------------------------------------------
    train("batch_size_negative", ["data.batch_size=-1"], "data.batch_size", "at least 1"),
    train("batch_size_zero", ["data.batch_size=0"], "data.batch_size", "at least 1"),
    train("batch_size_text", ["data.batch_size=abc"], "data.batch_size", "whole number"),
    train("eval_batch_size_zero", ["data.eval_batch_size=0"], "data.eval_batch_size"),
    train("num_workers_negative", ["data.num_workers=-2"], "data.num_workers", "at least 0"),
    train("max_epochs_text", ["trainer.max_epochs=abc"], "trainer.max_epochs", "whole number"),
    train("max_epochs_zero", ["trainer.max_epochs=0"], "trainer.max_epochs", "at least 1"),
    fine("coarse_epochs_negative", ["coarse_stage.max_epochs=-1"], "max_epochs", "at least 1"),
    train("seed_text", ["seed=abc"], "seed:", "whole number"),
    train("seed_negative", ["seed=-5"], "seed:", "at least 0"),
    train("lam_text", ["model.loss.lam=abc"], "model.loss.lam", "must be a number"),
    train("coarse6_zero", ["model.net.coarse6_units=0"], "model.net.coarse6_units",
          "at least 1"),
    fine("coarse6_zero_coarse_stage", ["coarse_stage.model.net.coarse6_units=0"],
         "coarse_stage.model.net.coarse6_units", "at least 1"),
    train("dropout_one", ["model.net.dropout=1"], "model.net.dropout", "below 1"),
    train("init_unknown", ["model.init=orthogonal"], "model.init", "orthogonal"),
    train("head_init_unknown", ["model.head_init=zeros"], "model.head_init", "zeros"),
    train("lr_negative", ["model.optim.lr.coarse1=-1"], "model.optim.lr.coarse1", ">= 0"),
    train("momentum_text", ["model.optim.momentum=abc"], "model.optim", "SGD"),
    train("scheduler_unknown", ["model.scheduler.name=step"], "model.scheduler.name", "step"),
    train("loss_not_a_group", ["model.loss=3"], "model.loss:", "group of settings"),
    train("net_target_missing", ["model.net._target_=nope.Net"], "model.net", "nope.Net",
          "cannot import"),
    train("loss_target_missing", ["model.loss._target_=nope.Loss"], "model.loss", "nope.Loss"),
    train("source_target_missing", ["data.source._target_=nope.Frames"], "data.source",
          "nope.Frames"),
    train("split_not_a_group", ["data.split=all"], "data.split:", "data.split.kind=all"),
    train("split_kind_unknown", ["data.split.kind=random"], "data.split.kind", "random"),
    train("val_fraction_too_big", ["data.split.val_fraction=1.5"], "data.split.val_fraction"),
    train("split_indices_out_of_range", ["data.split.kind=indices", "+data.split.train=[0,99]",
                                         "+data.split.val=[1]"], "data.split.train", "0..23"),
    train("target_unknown", ["data.target=labels"], "data.target", "labels"),
    train("rotate_text", ["data.augment.rotate=abc"], "data.augment.rotate", "number"),
    train("scale_not_a_pair", ["data.augment.scale=[1]"], "data.augment.scale", "[min, max]"),
    train("frames_zero", ["data.source.frames=0"], "data.source.frames", "at least 1"),
    train("precision_unknown", ["trainer.precision=fp7"], "trainer", "fp7"),
    train("accelerator_gpu_without_gpu", ["trainer.accelerator=gpu"], "trainer", "gpu"),
    train("cpu_allocator_unknown", ["cpu_allocator=fast"], "cpu_allocator", "fast"),
    train("stage_builds_on_unknown", ["stages.1.builds_on=medium"], "stages.1.builds_on",
          "medium", base=["+experiment=fine", *FINE]),
    train("unknown_setting", ["foo=1"], "foo:", "not a setting", "+foo"),
    train("unknown_group_option", ["data=nyu_v3"], "data=nyu_v3", "no such option", "nyu_v2"),
    train("malformed_override", ["data.batch_size=[1"], "data.batch_size=[1", "key=value"),
    # (a path below a file: a read-only folder does not stop root, who runs CI here)
    train("log_dir_unwritable", ["paths.log_dir={garbage}/runs"], "paths.log_dir",
          "{garbage}", "cannot create"),
    train("data_dir_unwritable", ["paths.data_dir={garbage}/data"], "paths.data_dir",
          "{garbage}", "cannot create"),
    # -- data files of train -----------------------------------------------------------------
    nyu("data_path_missing", "{tmp}/nope.mat", "data.path", "does not exist",
        "data.download=true"),
    nyu("data_path_folder", "{empty_dir}", "data.path", "is a folder"),
    nyu("data_path_text", "{textfile}", "notes.mat", "not an HDF5 file"),
    nyu("data_path_no_images", "{nokeys}", "nokeys.mat", "missing dataset 'images'"),
    nyu("depths_all_nan", "{nyu_nan}", "data:", "no valid depth"),
    nyu("depths_all_zero", "{nyu_zero}", "data:", "no valid depth"),
    nyu("depths_all_negative", "{nyu_negative}", "data:", "no valid depth"),
    nyu("split_file_missing", "{nyu_zero}", "nope.mat", "split file not found",
        extra=("data.split.kind=official", "data.split.file={tmp}/nope.mat")),
    Case("folder_without_root", "train", ["data=folder", *SMALL,
                                          "model.net.coarse6_units=64"], ["data.root"]),
    Case("folder_root_missing", "train", ["data=folder", *SMALL, "model.net.coarse6_units=64",
                                          "data.root={tmp}/nope"],
         ["data.root", "does not exist"]),
    Case("folder_without_pairs", "train", ["data=folder", *SMALL, "model.net.coarse6_units=64",
                                           "data.root={empty_dir}"],
         ["data.root", "no RGB-D pairs"]),
    Case("folder_depth_8bit", "train", ["data=folder", *SMALL, "model.net.coarse6_units=64",
                                        "data.root={eight_bit_dir}"],
         ["a.png", "8-bit PNG", "16-bit"]),
    # -- KITTI -------------------------------------------------------------------------------
    Case("kitti_missing_calibration", "train", ["+experiment=kitti", *KITTI,
                                                "data.root={kitti_no_calib}"],
         ["calib_cam_to_cam.txt", "calibration file not found"]),
    Case("kitti_depth_other_size", "train", ["+experiment=kitti", *KITTI,
                                             "data.root={kitti_small_depth}"],
         ["0000000000.png", "depth map is 30x10", "colour frame"]),
    Case("kitti_depth_8bit", "train", ["+experiment=kitti", *KITTI,
                                       "data.root={kitti_8bit}"],
         ["0000000000.png", "mode L", "16-bit"]),
    Case("kitti_split_list_missing_frames", "train", ["+experiment=kitti", *KITTI,
                                                      "data.root={kitti_ok}",
                                                      "data.split.kind=eigen",
                                                      "data.split.test_file={kitti_list}"],
         ["data.split.test_file", "not under", "0000000099"]),
    Case("folder_depth_scale_zero", "train", ["data=folder", *SMALL,
                                              "model.net.coarse6_units=64",
                                              "data.root={photo_dir}", "data.depth_scale=0"],
         ["data.depth_scale", "positive"]),
    # -- evaluate ----------------------------------------------------------------------------
    Case("evaluate_without_ckpt", "evaluate", EVAL, ["ckpt_path", "required"]),
    Case("evaluate_ckpt_missing", "evaluate", ["ckpt_path={tmp}/nope.ckpt", *EVAL],
         ["ckpt_path", "does not exist"]),
    Case("evaluate_ckpt_folder", "evaluate", ["ckpt_path={empty_dir}", *EVAL],
         ["ckpt_path", "is a folder"]),
    Case("evaluate_ckpt_garbage", "evaluate", ["ckpt_path={garbage}", *EVAL],
         ["ckpt_path", "not a readable checkpoint"]),
    Case("evaluate_ckpt_pickled", "evaluate", ["ckpt_path={pickled}", *EVAL],
         ["ckpt_path", "pickled code"]),
    Case("evaluate_batch_size_zero", "evaluate", ["ckpt_path={fine}", "batch_size=0", *EVAL],
         ["batch_size", "at least 1"]),
    Case("evaluate_batch_size_text", "evaluate", ["ckpt_path={fine}", "batch_size=abc", *EVAL],
         ["batch_size", "whole number"]),
    Case("evaluate_upsample_unknown", "evaluate", ["ckpt_path={fine}", "eval.upsample=cubic",
                                                   *EVAL], ["eval.upsample", "cubic"]),
    Case("evaluate_crop_outside", "evaluate", ["ckpt_path={fine}", "eval.crop=[0,500,0,10]",
                                               *EVAL], ["eval.crop", "480x640"]),
    Case("evaluate_depth_all_zero", "evaluate", ["ckpt_path={fine}", "data=folder",
                                                 "data.root={zero_depth_dir}", *EVAL[:2]],
         ["eval:", "none of the", "ground-truth depth"]),
    Case("evaluate_depth_all_nan", "evaluate", ["ckpt_path={fine}", "data=nyu_v2",
                                                "data.path={nyu_nan}", "data.split.kind=all",
                                                *EVAL[:2]],
         ["eval:", "none of the", "ground-truth depth"]),
    Case("evaluate_resolution_output", "evaluate", ["ckpt_path={fine}", "+eval.resolution=output",
                                                    *EVAL], ["eval.resolution", "full frames"]),
    Case("evaluate_device_cuda", "evaluate", ["ckpt_path={fine}", "device=cuda", *EVAL],
         ["device", "cuda"]),
    Case("evaluate_device_unknown", "evaluate", ["ckpt_path={fine}", "device=tpu9", *EVAL],
         ["device", "tpu9"]),
    Case("evaluate_figure_frame_out_of_range", "evaluate", ["ckpt_path={fine}",
                                                            "figure.frames=[999]", *EVAL],
         ["figure.frames", "999"]),
    # -- predict -----------------------------------------------------------------------------
    Case("predict_without_input", "predict", ["ckpt_path={fine}", *PRED], ["input", "required"]),
    Case("predict_input_missing", "predict", ["ckpt_path={fine}", "input={tmp}/nope.jpg",
                                              *PRED], ["input", "does not exist"]),
    Case("predict_input_empty_folder", "predict", ["ckpt_path={fine}", "input={empty_dir}",
                                                   *PRED], ["input", "holds no files"]),
    Case("predict_no_images", "predict", ["ckpt_path={fine}", "input={text_dir}", *PRED],
         ["input", "none of the"]),
    Case("predict_output_is_a_file", "predict", ["ckpt_path={fine}", "input={photo}",
                                                 "output_dir={garbage}", *PRED],
         ["output_dir", "not a writable folder"]),
    Case("predict_batch_size_zero", "predict", ["ckpt_path={fine}", "input={photo}",
                                                "batch_size=0", *PRED], ["batch_size"]),
    Case("predict_ckpt_garbage", "predict", ["ckpt_path={garbage}", "input={photo}", *PRED],
         ["ckpt_path", "not a readable checkpoint"]),
    Case("predict_device_cuda", "predict", ["ckpt_path={fine}", "input={photo}", "device=cuda",
                                            *PRED], ["device", "cuda"]),
    # -- report and compare ------------------------------------------------------------------
    Case("report_missing", "report", ["{tmp}/nope"], ["nope"]),
    Case("report_no_runs", "report", ["{empty_dir}"], ["empty"]),
    Case("report_binary_epochs", "report", ["{binary_run}"], ["epochs.csv"]),
    Case("compare_missing", "compare", ["{tmp}/nope"], ["nope"]),
    Case("compare_no_jobs", "compare", ["{empty_dir}"], ["no Hydra job"]),
    Case("compare_binary_epochs", "compare", ["{binary_sweep}"], ["epochs.csv"]),
    Case("compare_corrupt_metrics", "compare", ["{corrupt_sweep}"],
         ["metrics.json", "not valid JSON"]),
]


class Payload:
    """Stands for code pickled into a checkpoint."""

    def __reduce__(self):
        return (print, ("pickled code ran",))


def make_files(work: Path) -> dict[str, str]:
    """The files the cases refer to."""
    import torch

    sys.path.insert(0, str(HERE))
    from nyu_files import write_nyu_v2

    from depth_lightning.data.synthrooms import ensure_synthrooms

    files = {"data": work / "data", "tmp": work / "tmp", "empty_dir": work / "empty"}
    for d in ("data", "tmp", "empty_dir"):
        files[d].mkdir(parents=True, exist_ok=True)
    ensure_synthrooms(files["data"], FRAMES, 0)
    files["garbage"] = work / "garbage.ckpt"
    files["garbage"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["pickled"] = work / "pickled.ckpt"
    torch.save({"depth_lightning": {"stage": "coarse"}, "x": Payload()}, files["pickled"])
    files["pickled_raw"] = work / "pickled_raw.ckpt"
    files["pickled_raw"].write_bytes(pickle.dumps({"x": Payload()}))
    files["plain"] = work / "plain.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, files["plain"])
    files["textfile"] = work / "notes.mat"
    files["textfile"].write_text("not hdf5")
    files["nokeys"] = work / "nokeys.mat"
    import h5py

    with h5py.File(files["nokeys"], "w") as f:
        f["depths"] = np.zeros((2, 640, 480), np.float32)
    images = [np.full((480, 640, 3), 100, np.uint8)] * 4
    for name, value in (("nyu_nan", np.nan), ("nyu_zero", 0.0), ("nyu_negative", -1.0)):
        files[name] = work / f"{name}.mat"
        depths = [np.full((480, 640), value, np.float32)] * 4
        write_nyu_v2(files[name], images, depths, depths, [f"s_{i}" for i in range(4)])
    files.update(photo_files(work))
    files.update(kitti_files(work))
    files.update(run_files(work))
    return {k: str(v) for k, v in files.items()}


def photo_files(work: Path) -> dict[str, Path]:
    from PIL import Image

    photo_dir = work / "photos"
    (photo_dir / "rgb").mkdir(parents=True, exist_ok=True)
    (photo_dir / "depth").mkdir(exist_ok=True)
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(photo_dir / "rgb" / "a.png")
    Image.fromarray(np.full((120, 160), 2000, np.uint16)).save(photo_dir / "depth" / "a.png")
    for name, value, dtype in (("eight_bit_dir", 20, np.uint8),
                               ("zero_depth_dir", 0, np.uint16)):
        folder = work / name
        (folder / "rgb").mkdir(parents=True, exist_ok=True)
        (folder / "depth").mkdir(exist_ok=True)
        for n in ("a", "b"):
            Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(folder / "rgb" / f"{n}.png")
            Image.fromarray(np.full((120, 160), value, dtype)).save(folder / "depth" / f"{n}.png")
    text_dir = work / "texts"
    text_dir.mkdir(exist_ok=True)
    (text_dir / "a.txt").write_text("hello")
    return {"photo_dir": photo_dir, "photo": photo_dir / "rgb" / "a.png", "text_dir": text_dir,
            "eight_bit_dir": work / "eight_bit_dir", "zero_depth_dir": work / "zero_depth_dir"}


def kitti_files(work: Path) -> dict[str, Path]:
    """Small KITTI layouts: a good one and one broken each way."""
    from PIL import Image

    calib = ("P_rect_02: 7.2e+02 0 3.0e+01 0 0 7.2e+02 1.0e+01 0 0 0 1 0\n"
             "P_rect_03: 7.2e+02 0 3.0e+01 0 0 7.2e+02 1.0e+01 0 0 0 1 0\n")
    drive = "2011_09_26_drive_0001_sync"
    out = {}
    for name in ("kitti_ok", "kitti_no_calib", "kitti_small_depth", "kitti_8bit"):
        root = work / name
        day = root / "2011_09_26"
        for cam in ("image_02", "image_03"):
            (day / drive / cam / "data").mkdir(parents=True, exist_ok=True)
            (root / "train" / drive / "proj_depth" / "velodyne_raw" / cam).mkdir(
                parents=True, exist_ok=True)
            for i in range(3):
                frame = f"{i:010d}.png"
                Image.fromarray(np.full((20, 60, 3), 80 + i, np.uint8)).save(
                    day / drive / cam / "data" / frame)
                depth = np.zeros((20, 60), np.uint16)
                depth[::3, ::4] = 2560
                shape = (10, 30) if name == "kitti_small_depth" and i == 0 else (20, 60)
                img = Image.fromarray(depth[:shape[0], :shape[1]])
                if name == "kitti_8bit" and i == 0:
                    img = Image.fromarray(np.full(shape, 10, np.uint8))
                img.save(root / "train" / drive / "proj_depth" / "velodyne_raw" / cam / frame)
        if name != "kitti_no_calib":
            (day / "calib_cam_to_cam.txt").write_text(calib)
        out[name] = root
    out["kitti_list"] = work / "kitti_list.txt"
    out["kitti_list"].write_text(f"2011_09_26/{drive} 0000000099 l\n")
    return out


def run_files(work: Path) -> dict[str, Path]:
    """A run and sweeps with broken files, for report and compare."""
    run = work / "binary_run"
    (run / "coarse").mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text("task_name: train\n")
    (run / "coarse" / "epochs.csv").write_bytes(b"\x00\xff\xfe" * 100)
    sweeps = {}
    for name, broken in (("binary_sweep", "epochs"), ("corrupt_sweep", "metrics")):
        job = work / name / "0_x=1"
        (job / ".hydra").mkdir(parents=True, exist_ok=True)
        (job / "coarse").mkdir(exist_ok=True)
        (job / ".hydra" / "overrides.yaml").write_text("- x=1\n")
        (job / "metrics.json").write_text('{"mean": {"si_rmse_log": 0.3}, "coarse": '
                                          '{"si_rmse_log": 0.2}}' if broken == "epochs"
                                          else '{"mean": ')
        (job / "coarse" / "epochs.csv").write_bytes(b"\x00\xff\xfe" * 100 if broken == "epochs"
                                                    else b"epoch,val/si_rmse_log\n0,0.2\n")
        sweeps[name] = work / name
    return {"binary_run": run, **sweeps}


def call(entry: str, args: list[str]) -> int:
    """Run an entry point in this process as its command line would; its exit status."""
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    module = __import__(f"depth_lightning.{entry}", fromlist=["main"])
    sys.argv = [f"depth_lightning.{entry}", *args]
    try:
        if entry in ("report", "compare"):
            return int(module.main(args) or 0)
        module.main()
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


def run_case(case: Case, files: dict[str, str], work: Path) -> dict:
    out = work / "cases" / case.id
    values = {**files, "out": str(out)}
    args = [a.format(**values) for a in case.args]
    stderr, stdout = io.StringIO(), io.StringIO()
    before = set(p for p in Path(files["data"]).rglob("*"))
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        try:
            code = call(case.entry, args)
        except BaseException:  # an uncaught exception: the traceback a user would see
            traceback.print_exc()
            code = -1
    err = stderr.getvalue()
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    left = [str(p) for p in out.rglob("*") if p.is_file()] if out.exists() else []
    new_data = [str(p) for p in set(Path(files["data"]).rglob("*")) - before
                if ".tmp-" in p.name]
    return {"code": code, "error_lines": lines, "traceback": "Traceback" in err,
            "needles": [n.format(**values) for n in case.needles], "left_behind": left,
            "temp_files": new_data, "stderr_tail": err[-1500:]}


def tiny_checkpoints(files: dict[str, str], work: Path) -> None:
    """A coarse and a fine checkpoint, trained here (one batch each)."""
    out = work / "tiny"
    args = ["+experiment=fine", *[a.format(data=files["data"], out=out) for a in FINE]]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = call("train", args)
    assert code == 0, "the tiny run failed"
    (run,) = (out / "train" / "runs").iterdir()
    files["coarse"] = str(next((run / "coarse" / "checkpoints").glob("*.ckpt")))
    files["fine"] = str(next((run / "fine" / "checkpoints").glob("*.ckpt")))


def main(work: str) -> int:
    work_dir = Path(work)
    files = make_files(work_dir)
    tiny_checkpoints(files, work_dir)
    results = []
    for case in CASES:
        case.result = run_case(case, files, work_dir)
        results.append(asdict(case))
    (work_dir / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
