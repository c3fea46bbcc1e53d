"""Searches and sweeps that scale out: the search space, the per-epoch callback of train(), pruning, two workers
sharing one Optuna study, sweep members claimed once under concurrency."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest

from kit.cli import main
from kit.errors import InputError
from kit.experiments import search, sweep
from kit.experiments.jobs import without_option
from kit.experiments.space import SearchParam, as_settings, merge_base, parse_param, parse_space
from kit.files import lock_for
from kit.training.config import resolve_config
from kit.training.run import train
from kit.workers import pool_context

TINY = {"data_dir": None, "epochs": 2, "batch_size": 2, "max_train_images": 2, "max_val_images": 2,
        "schedule": [[0, 96]], "num_workers": 0}


def tiny(synth_dir: Path, **more: object) -> dict:
    return {**TINY, "data_dir": str(synth_dir), **more}


def test_the_space_parses_every_kind_and_names_what_is_wrong() -> None:
    assert parse_param("lr=log:1e-5:1e-3") == SearchParam("lr", "log", 1e-5, 1e-3)
    assert parse_param("postprocess.box_thresh=float:0.4:0.7:0.05") == SearchParam("postprocess.box_thresh", "float",
                                                                                   0.4, 0.7, 0.05)
    assert parse_param("batch_size=int:2:8").middle() == 2
    assert parse_param("loss.prob_loss=choice:['bce','dice']").choices == ("bce", "dice")
    assert parse_param("lr=log:1e-4:1e-2").middle() == pytest.approx(1e-3)
    for bad, message in (("lr", "KEY=KIND:ARGS"), ("lr=uniform:0:1", "KIND one of"), ("lr=float:1:0", "LOW < HIGH"),
                         ("lr=log:0:1", "0 < LOW"), ("batch_size=int:2.5:8", "whole numbers"),
                         ("x=choice:[[1,2]]", "numbers, strings"), ("x=choice:oops", "non-empty list")):
        with pytest.raises(InputError, match=message):
            parse_param(bad)
    with pytest.raises(InputError, match="more than once"):
        parse_space(["lr=log:1e-5:1e-3", "lr=float:0:1"])
    assert as_settings({"lr": 1e-3, "postprocess.thresh": 0.3, "postprocess.box_thresh": 0.5}) == {
        "lr": 1e-3, "postprocess": {"thresh": 0.3, "box_thresh": 0.5}}
    assert merge_base({"epochs": 3, "postprocess": {"thresh": 0.2}}, {"postprocess": {"box_thresh": 0.5}}) == {
        "epochs": 3, "postprocess": {"thresh": 0.2, "box_thresh": 0.5}}
    with pytest.raises(InputError, match=r"\['postprocess.thresh'\] both fixed"):
        merge_base({"postprocess": {"thresh": 0.2}}, {"postprocess": {"thresh": 0.3}})
    with pytest.raises(InputError, match="'lr' both fixed"):
        merge_base({"lr": 1e-3}, {"lr": 1e-4})
    assert without_option(["--study", "s", "--jobs", "2", "--jobs=3", "--trials", "4"], "--jobs") == [
        "--study", "s", "--trials", "4"]


def test_a_search_refuses_settings_the_kit_does_not_know_before_any_trial() -> None:
    with pytest.raises(InputError, match="not a nested setting; nested ones are .*postprocess.box_thresh"):
        search.check_space([parse_param("postprocess.boxthresh=float:0.4:0.7")], {}, "smoke")
    with pytest.raises(InputError, match=r"unknown setting\(s\) \['lrr'\]"):
        search.check_space([parse_param("lrr=log:1e-5:1e-3")], {}, "smoke")
    with pytest.raises(InputError, match="precision must be one of"):
        search.check_space([parse_param("precision=choice:['fp8']")], {}, "smoke")
    with pytest.raises(InputError, match="at least one --param"):
        search.check_space([], {}, "smoke")
    with pytest.raises(InputError, match="--trials and --top"):
        main(["search", "--study", "s", "--param", "lr=log:1e-5:1e-3", "--trials", "0"])


@pytest.mark.slow
def test_the_epoch_callback_sees_each_epoch_and_can_end_the_run(synth_dir: Path, tmp_path: Path) -> None:
    seen: list[dict] = []
    config = resolve_config("smoke", **tiny(synth_dir, epochs=3), output_dir=str(tmp_path), run_name="cb")
    result = train(config, progress=False, on_epoch=lambda row: seen.append(row) or row["epoch"] == 1)
    assert [row["epoch"] for row in seen] == [0, 1] and all(0 <= row["val_hmean"] <= 1 for row in seen)
    assert result.summary["epochs_run"] == 2 and result.summary["stopped_by"] == "callback"
    assert (result.run_dir / "checkpoints" / "last.ckpt").is_file()  # the files of the epoch it stopped after
    assert pd.read_csv(tmp_path / "runs.csv")["stopped_by"].tolist() == ["callback"]
    ended = train(resolve_config("smoke", **tiny(synth_dir, epochs=1), output_dir=str(tmp_path), run_name="all"),
                  progress=False, on_epoch=lambda row: False)
    assert ended.summary["stopped_by"] == "epochs"


def test_the_pruner_stops_a_trial_below_the_median_after_its_first_epoch(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Two trials reach 0.9 every epoch; the third reports 0.1 after epoch 0 and is stopped there, as pruned."""
    stopped_after: list[int] = []

    def fake_train(config, progress, on_epoch):  # noqa: ANN001, ANN202 - train()'s signature
        hmean = 0.1 if config.run_name == "trial-0002" else 0.9
        for epoch in range(config.epochs):
            if on_epoch({"epoch": epoch, "val_hmean": hmean}):
                stopped_after.append(epoch)
                break
        run_dir = tmp_path / "runs" / config.run_name
        run_dir.mkdir(parents=True)
        pd.DataFrame({"image": ["a", "b"], "precision": [hmean, 1.0], "recall": [hmean, 1.0],
                      "hmean": [hmean, 1.0]}).to_csv(run_dir / "val_per_image.csv", index=False)
        summary = {"val_hmean": hmean, "val_precision": hmean, "val_recall": hmean, "best_epoch": 0,
                   "epochs_run": epoch + 1, "train_time_s": 1.0}
        return SimpleNamespace(summary=summary, run_dir=run_dir)

    monkeypatch.setattr(search, "train", fake_train)
    study = search.run_search("prune", [parse_param("lr=log:1e-4:1e-2")], 3, {"epochs": 4}, "smoke", tmp_path,
                              seed=0)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2 + [optuna.trial.TrialState.PRUNED]
    assert stopped_after == [0]
    table = pd.read_csv(tmp_path / search.TRIALS_CSV)
    assert table["state"].tolist() == ["COMPLETE", "COMPLETE", "PRUNED"] and "lr" in table
    compared = search.compare_trials(study)
    assert list(compared.index) == ["trial-0000", "trial-0001"] and "lr" in compared
    again = search.run_search("prune", [parse_param("lr=log:1e-4:1e-2")], 3, {"epochs": 4}, "smoke", tmp_path)
    assert len(again.trials) == 3  # the study already holds its 3 trials: nothing more runs


@pytest.mark.slow
def test_two_workers_share_one_study(synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--jobs 2``: two processes take the trials of one journal-file study, each trial once, both pruned on the
    per-epoch H-mean; the parent prints the study and the paired comparison of its best trials."""
    fixed = [arg for key, value in tiny(synth_dir).items() for arg in ("--set", f"{key}={value!r}")]
    main(["search", "--study", "two", "--preset", "smoke", "--param", "lr=log:1e-4:1e-2",
          "--param", "postprocess.box_thresh=float:0.3:0.6", "--trials", "4", "--out", str(tmp_path), "--seed", "0",
          "--jobs", "2", *fixed])
    out = capsys.readouterr().out
    study = optuna.load_study(study_name="two", storage=search.storage_for(None, tmp_path))
    count = len(study.trials)  # 4; 5 only if both workers finished a trial at the same moment when 3 existed
    assert count in (4, 5) and sorted(t.number for t in study.trials) == list(range(count))
    assert f"study 'two': {count} trials" in out and "best: trial" in out and "baseline" in out
    assert {t.state for t in study.trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 2 and os.getpid() not in {int(w.rsplit(":", 1)[1]) for w in workers}
    for trial in study.trials:
        assert (tmp_path / "runs" / f"trial-{trial.number:04d}" / "metrics.csv").is_file()
        assert {"lr", "postprocess.box_thresh"} == set(trial.params)
    runs = pd.read_csv(tmp_path / "runs" / "runs.csv")
    assert sorted(runs["run"]) == [f"trial-{n:04d}" for n in range(count)]  # one row each, none lost
    assert sorted(p.name for p in (tmp_path / "workers").glob("*.log")) == ["worker-0.log", "worker-1.log"]


def _fake_member(log: str):  # noqa: ANN202
    def run(notebook: str, out: Path, params: dict, **options: object) -> None:
        time.sleep(0.05)
        with lock_for(log):
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"run": params["run_name"], "pid": os.getpid()}) + "\n")
    return run


def _sweep_worker(out: str, log: str, generation: str) -> None:
    sweep.run_notebook = _fake_member(log)
    sweep.run_sweep({"lr": [1e-3, 2e-3, 3e-3, 4e-3]}, [0, 1], out, generation=generation)


def test_sweep_workers_claim_each_member_once(tmp_path: Path) -> None:
    """Three processes on one sweep folder: all 8 members run, each exactly once, and the ledger says who ran it."""
    log = str(tmp_path / "ran.jsonl")
    context = pool_context()
    workers = [context.Process(target=_sweep_worker, args=(str(tmp_path / "sweep"), log, "g1")) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    ran = [json.loads(line) for line in Path(log).read_text().splitlines()]
    assert sorted(r["run"] for r in ran) == sorted({r["run"] for r in ran}) and len(ran) == 8
    ledger = pd.read_csv(tmp_path / "sweep" / sweep.LEDGER)
    assert ledger["status"].tolist() == ["done"] * 8 and ledger["run"].is_unique
    by_run = {r["run"]: f"{socket.gethostname()}:{r['pid']}" for r in ran}
    assert all(by_run[row.run] == row.worker for row in ledger.itertuples())


def test_a_member_left_running_is_retaken_only_when_its_worker_is_gone(tmp_path: Path) -> None:
    here = socket.gethostname()
    members = [({"lr": v}, 0) for v in (1, 2, 3, 4, 5, 6)]
    names = [sweep.point_name(p, s) for p, s in members]
    ledger = tmp_path / sweep.LEDGER
    pd.DataFrame([
        {"run": names[0], "status": "running", "worker": f"{here}:{os.getpid()}", "generation": "old"},  # alive
        {"run": names[1], "status": "running", "worker": "elsewhere:1", "generation": "old"},  # another machine
        {"run": names[2], "status": "failed", "worker": f"{here}:1", "generation": "now"},  # failed in this sweep
        {"run": names[3], "status": "running", "worker": f"{here}:999999999", "generation": "old"},  # died
        {"run": names[4], "status": "failed", "worker": f"{here}:1", "generation": "old"},  # an earlier sweep's
        {"run": names[5], "status": "running", "worker": None, "generation": "old"},  # a ledger naming no worker
    ]).to_csv(ledger, index=False)
    assert sweep._claim(ledger, members, "now") == members[3]
    assert sweep._claim(ledger, members, "now") == members[4]
    assert sweep._claim(ledger, members, "now") == members[5]
    assert sweep._claim(ledger, members, "now") is None
    table = pd.read_csv(ledger).set_index("run")
    assert table.loc[names[3], "worker"] == table.loc[names[4], "worker"] == f"{here}:{os.getpid()}"
