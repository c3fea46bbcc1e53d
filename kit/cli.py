"""Every command line of the kit in one place: ``python -m kit COMMAND [options]``.

One convention for all of them:
- Each command's options are declared here with a help text, so ``python -m kit --help``
  and ``python -m kit COMMAND --help`` answer without importing torch or the command's module.
- Arguments are checked here (files exist, names are known, values parse: ``--set`` and ``--grid``
  reach the command parsed) before the command's module is imported and any slow work starts.
- A user error is one line on stderr and exit status 2. User errors are the kit's own input
  errors (bad annotation or prediction files, unknown settings, missing files): they say what
  is wrong and where, so a traceback only hides the line that matters. ``--debug`` (anywhere
  on the command line) or ``KIT_DEBUG=1`` shows it.

The command modules name nothing here: this table names them (``module:function``), so imports
run one way, from the command line down to the library.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn

from kit.errors import InputError, NonFiniteLoss
from kit.experiments.space import EXAMPLES, parse_space
from kit.inference.tta import parse_tta
from kit.paths import COMPETITION_DIR, OUTPUTS, SYNTH_COUNTS, SYNTH_DIR, expand_checkpoints, project_path
from kit.training.presets import PRESETS, REPORT_PRESETS

EPILOG = """A user error (a missing file, an unknown name, a value that does not parse) is one line starting
with "error:" and exit status 2, reported before any slow work starts; --debug or KIT_DEBUG=1 shows the
traceback."""
#: kit.experiments.zoo.PREFIX (that module imports torch): ``--ckpt zoo:NAME`` is zoo member NAME zero-shot.
ZOO_PREFIX = "zoo:"
#: kit.runtime.PRECISIONS' names (that module imports torch).
PRECISION_CHOICES = ("fp32", "fp16", "bf16")
#: kit.inference.predict.BACKENDS' names, kit.data.synth.LANGUAGES' and kit.experiments.search's SAMPLERS and
#: PRUNERS (those modules import heavy libraries).
BACKEND_CHOICES = ("auto", "torch", "onnxruntime")
LANGUAGE_CHOICES = ("ko", "en")
SAMPLER_CHOICES = ("tpe", "random")
PRUNER_CHOICES = ("median", "hyperband", "none")
#: What a user can cause with a wrong argument, setting or file: shown as one line. Anything else (a ValueError
#: from deep inside NumPy included) is a bug and keeps its traceback.
USER_ERRORS = (InputError, NonFiniteLoss, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError)


class _Parser(argparse.ArgumentParser):
    """argparse's usage errors as user errors: one line, exit 2, like every other."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


@dataclass(frozen=True)
class Command:
    """A command: what runs it (``module:function`` taking the parsed arguments), its help, options and checks."""

    target: str
    help: str
    options: Callable[[argparse.ArgumentParser], None]
    check: Callable[[argparse.Namespace], None] = lambda args: None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr=4e-4", "data_dir=data/x"]`` -> settings: Python literals where they parse, else the raw string."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            overrides[key] = raw
    return overrides


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["weight_decay=[8.5e-5,1.2e-4]", "lr=[1e-3]"]`` -> ``{"weight_decay": [8.5e-5, 1.2e-4], ...}``."""
    grid = {}
    for key, values in parse_overrides(items).items():
        if not isinstance(values, (list, tuple)) or not values:
            raise InputError(f"--grid {key}: give a non-empty list, e.g. --grid '{key}=[1e-4,2e-4]'")
        grid[key] = list(values)
    return grid


def number_list(text: str, kind: type = float) -> list[Any]:
    """``"0.6,0.4"`` -> ``[0.6, 0.4]`` (an argparse type: a bad value is a usage error)."""
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None


def existing(path: Path | str, what: str) -> None:
    """Fail early, naming ``what``, when ``path`` does not exist."""
    if not project_path(path).exists():
        raise FileNotFoundError(f"{what} {path} not found")


# ------------------------------------------------------------------------------------------ options and checks


def _synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=SYNTH_DIR, help="the dataset folder to write (competition layout)")
    p.add_argument("--seed", type=int, default=0, help="the generator's seed: same seed, same bytes")
    for split, count in SYNTH_COUNTS.items():
        p.add_argument(f"--{split}", type=int, default=count, help=f"images in the {split} split (default {count})")
    p.add_argument("--language", choices=LANGUAGE_CHOICES, default="ko",
                   help="ko: Korean receipts with English words in the competition's share (default); en: English")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a synthetic set already in --out (default: refuse a folder that holds files)")


def _check_synth(args: argparse.Namespace) -> None:
    if any(getattr(args, split) < 0 for split in SYNTH_COUNTS):
        raise InputError("split sizes must be 0 or more")


def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=OUTPUTS / "notebooks", help="where the executed notebooks go")


def _reproduce(p: argparse.ArgumentParser) -> None:
    p.add_argument("report", choices=REPORT_PRESETS, help="the report's preset (its backbone)")
    p.add_argument("--data-dir", default="data/receipts",
                   help="the competition data (competition layout; data/receipts falls back to the synthetic data)")
    p.add_argument("--smoke", action="store_true", help="the CPU smoke preset instead of the report's (a quick check)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default outputs/reproduce-REPORT)")


def _check_data_folder(data_dir: Path | str) -> None:
    """A data folder must exist, except the default competition folder (it falls back to the synthetic data)."""
    if project_path(data_dir) != COMPETITION_DIR:
        existing(data_dir, "data folder")


def _check_data_dir(args: argparse.Namespace) -> None:
    _check_data_folder(args.data_dir)


def _train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, choices=list(PRESETS), metavar="PRESET",
                   help=f"the recipe to start from: {', '.join(PRESETS)} (default: the TrainConfig defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting (Python literal), e.g. --set lr=4e-4 --set 'schedule=[[0,640],[4,960]]'")
    p.add_argument("--resume", type=Path, default=None, help="a checkpoint of the run to continue (last.ckpt)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run of the same run_name (default: refuse, it holds checkpoints)")


def _check_train(args: argparse.Namespace) -> None:
    args.set = parse_overrides(args.set)
    if args.set.get("data_dir"):
        _check_data_folder(args.set["data_dir"])
    if args.resume is not None:
        existing(args.resume, "checkpoint")


def _pretrained(p: argparse.ArgumentParser) -> None:
    p.add_argument("arch", help="a pretrained detector (a zoo member: ppocr_det, ppocr_v4_mobile, ...; python -m kit "
                   "zoo) or backbone (tf_efficientnet_lite0, ...)")
    p.add_argument("--out", type=Path, required=True, help="the checkpoint to write (an existing file is kept)")
    p.add_argument("--preset", default=None, choices=list(PRESETS), metavar="PRESET",
                   help="where the postprocess and evaluation size come from (default: the arch's preset)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set eval_size=960 --set 'postprocess={\"thresh\": 0.2}'")


def _check_pretrained(args: argparse.Namespace) -> None:
    args.set = parse_overrides(args.set)
    if project_path(args.out).exists():
        raise FileExistsError(f"{args.out} exists; give another --out (the kit does not overwrite a checkpoint)")


def _predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", action="append", required=True,
                   help="a checkpoint path or glob pattern; repeat for an ensemble (maps averaged)")
    p.add_argument("--images", required=True, type=Path, help="the folder of images to predict")
    p.add_argument("--out", type=Path, help="the predictions JSON to write (competition schema)")
    p.add_argument("--csv", type=Path, help="the leaderboard CSV to write, checked as the leaderboard would before it "
                   "replaces anything")
    p.add_argument("--test-json", type=Path, help="the test JSON: which images, in the CSV rows' order (default: "
                   "every image in --images, by name)")
    p.add_argument("--tta", default="", help="extra TTA views, e.g. hflip,vflip,rot90,scale=0.9,scale=1.1")
    p.add_argument("--weights", type=number_list, default=None, help="ensemble weights, one per checkpoint: 0.6,0.4")
    p.add_argument("--frame-size", type=int, default=None,
                   help="side of the common frame the maps are averaged in (default: the first checkpoint's)")
    p.add_argument("--thresh", type=float, default=None, help="probability threshold (default: the checkpoint's)")
    p.add_argument("--box-thresh", type=float, default=None, help="minimum box score (default: the checkpoint's)")
    p.add_argument("--unclip-ratio", type=float, default=None, help="polygon expansion (default: the checkpoint's)")
    p.add_argument("--output", choices=("polygon", "quad"), default=None,
                   help="polygons, or minimum-area quadrilaterals (default: the checkpoint's)")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                   help="inference precision (fp16/bf16 need a GPU)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                   help="where the networks run: auto (ONNX Runtime's CPU provider on each checkpoint's exported "
                        "graph for fp32 on a CPU, torch on a GPU), torch, or onnxruntime (.onnx files from export run "
                        "there anyway)")


def _export(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="the checkpoint to export")
    p.add_argument("--out", type=Path, required=True, help="the ONNX file to write (dynamic batch, height, width)")
    p.add_argument("--size", type=int, default=None, help="the side traced at (default: the evaluation size)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (default: refuse)")


def _check_export(args: argparse.Namespace) -> None:
    existing(args.checkpoint, "checkpoint")
    if args.out.exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; the kit does not replace it unasked: another --out, or --overwrite")


def _check_predict(args: argparse.Namespace) -> None:
    if not (args.out or args.csv):
        raise InputError("give --out PRED.json, --csv OUT.csv or both: where the predictions go")
    if any(c.startswith(ZOO_PREFIX) for c in args.ckpt):
        from kit.experiments.zoo import resolve  # deferred: writing a zoo checkpoint imports torch

        args.ckpt = resolve(args.ckpt)
    args.ckpt = [str(p) for p in expand_checkpoints(args.ckpt)]
    if not project_path(args.images).is_dir():
        raise NotADirectoryError(f"image folder {args.images} not found")
    if args.test_json:
        existing(args.test_json, "test JSON")
    if args.weights is not None and len(args.weights) != len(args.ckpt):
        raise InputError(f"--weights gives {len(args.weights)} weights for {len(args.ckpt)} checkpoints")
    parse_tta(args.tta)


def _zoo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=COMPETITION_DIR, type=Path,
                   help="a folder in the competition layout (default data/receipts, else the synthetic receipts)")
    p.add_argument("--split", default="val", help="the split to score (default val)")
    p.add_argument("--max-images", type=int, default=None, help="the first N images only (default: all)")
    p.add_argument("--members", type=lambda text: [n for n in text.split(",") if n], default=None,
                   help="comma-separated zoo members (default: all; one not installed gets a row saying how)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                   help="where the detectors run (auto: ONNX Runtime on a CPU, torch on a GPU)")
    p.add_argument("--out", type=Path, default=OUTPUTS / "zoo",
                   help="the folder for zoo_DATASET_SPLIT.csv and .md (default outputs/zoo)")


def _check_zoo(args: argparse.Namespace) -> None:
    _check_data_folder(args.data_dir)
    if args.max_images is not None and args.max_images < 1:
        raise InputError("--max-images must be 1 or more")


def _metric(p: argparse.ArgumentParser) -> None:
    p.add_argument("gt", type=Path, help="GT JSON (competition schema)")
    p.add_argument("pred", type=Path, help="predictions: a competition-schema JSON (img_w/img_h not needed) or "
                   "the submission CSV (recognised by its filename,polygons header)")
    p.add_argument("--per-image", action="store_true", help="add per-image scores and character counts")
    p.add_argument("--pooled", action="store_true", help="pool character counts instead of averaging images")
    p.add_argument("--workers", type=int, default=1, help="processes (images are spread over them)")
    p.add_argument("--strict", action="store_true",
                   help="fail on skipped polygons, ignored or missing prediction images instead of warning")


def _check_metric(args: argparse.Namespace) -> None:
    existing(args.gt, "GT file")
    existing(args.pred, "predictions file")


def _submit(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", nargs="?", type=Path,
                   help="a predictions JSON (competition schema, e.g. from predict --out) to write as the CSV")
    p.add_argument("out", nargs="?", type=Path, help="the CSV to write (replaced only by one that passes the checks)")
    p.add_argument("--check", type=Path, help="instead: the CSV to check (exit status 1 if the leaderboard rejects it)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", type=Path, help="the test image folder (names and sizes)")
    source.add_argument("--test-json", type=Path, help="the test JSON (names, sizes and the rows' order)")


def _check_submit(args: argparse.Namespace) -> None:
    if args.check and args.predictions:
        raise InputError("give PRED.json OUT.csv to write a CSV, or --check CSV to check one, not both")
    if not args.check and not (args.predictions and args.out):
        raise InputError("give PRED.json OUT.csv (with --test-json) to write the CSV, or --check CSV to check one")
    if args.predictions and not args.test_json:
        raise InputError("writing a CSV needs --test-json: its image order is the rows' order")
    existing(args.check or args.predictions, "submission" if args.check else "predictions JSON")
    existing(args.images or args.test_json, "test images" if args.images else "test JSON")


def _soup(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", nargs="+", help="checkpoint paths or glob patterns (one model config)")
    p.add_argument("--out", type=Path, required=True, help="the averaged checkpoint to write")


def _check_soup(args: argparse.Namespace) -> None:
    args.checkpoints = [str(p) for p in expand_checkpoints(args.checkpoints)]


def _sweep(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", action="append", required=True, metavar="KEY=[V1,V2]",
                   help="a setting and its values; repeat for a product, e.g. --grid 'weight_decay=[8.5e-5,1.2e-4]'")
    p.add_argument("--seeds", type=lambda s: number_list(s, int), default=[0], help="seeds per grid point: 0,1,2")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a notebook 02 parameter under every run, e.g. --set preset=smoke --set arch=resnet18")
    p.add_argument("--out", type=Path, default=OUTPUTS / "sweep", help="the sweep folder (ledger, notebooks, runs)")
    p.add_argument("--baseline", default=None, metavar="RUN",
                   help="the grid point the others are compared with, as its run name without the seed "
                   "(default: the best)")
    _jobs(p, "members")
    p.add_argument("--generation", default=None, help=argparse.SUPPRESS)  # the sweep a --jobs worker belongs to


def _jobs(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--jobs", type=int, default=1, help=f"worker processes running {what} at once on this machine "
                   "(one GPU each where there are several; default 1)")


def _check_jobs(args: argparse.Namespace) -> None:
    if args.jobs < 1:
        raise InputError(f"--jobs must be 1 or more, got {args.jobs}")


def _check_sweep(args: argparse.Namespace) -> None:
    args.grid, args.set = parse_grid(args.grid), parse_overrides(args.set)
    _check_jobs(args)


def _search(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="the study's name: workers giving the same name and storage join it")
    p.add_argument("--param", action="append", required=True, metavar="KEY=KIND:ARGS",
                   help=f"a searched setting (TrainConfig key, nested ones dotted), e.g. {EXAMPLES}")
    p.add_argument("--trials", type=int, default=20, help="trials in the study, all workers together (default 20)")
    p.add_argument("--preset", default=None, choices=list(PRESETS), metavar="PRESET",
                   help="the recipe every trial starts from (default: the TrainConfig defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a fixed setting under every trial, e.g. --set epochs=5 --set data_dir=data/x")
    p.add_argument("--storage", default=None, help="where the study lives: a journal file (default "
                   "OUT/study.journal) or a database URL (sqlite:///s.db, postgresql://...) for other machines")
    p.add_argument("--out", type=Path, default=None, help="the study's folder: runs, trials.csv, worker logs "
                   "(default outputs/search/STUDY)")
    p.add_argument("--sampler", choices=SAMPLER_CHOICES, default="tpe", help="how settings are sampled (default tpe)")
    p.add_argument("--pruner", choices=PRUNER_CHOICES, default="median",
                   help="which trials stop early on their per-epoch val H-mean (default median)")
    p.add_argument("--seed", type=int, default=None, help="the sampler's seed (offset per worker; default: random)")
    p.add_argument("--top", type=int, default=5, help="the best trials compared at the end (default 5)")
    _jobs(p, "trials")


def _check_search(args: argparse.Namespace) -> None:
    args.param, args.set = parse_space(args.param), parse_overrides(args.set)
    if args.set.get("data_dir"):
        _check_data_folder(args.set["data_dir"])
    if args.trials < 1 or args.top < 1:
        raise InputError("--trials and --top must be 1 or more")
    _check_jobs(args)


def _compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("sets", nargs="+", type=Path,
                   help="prediction sets on the same images: predictions JSON or submission CSV (with --gt), or "
                   "per-image scores (python -m kit metric --per-image JSON, a run's val_per_image.csv)")
    p.add_argument("--gt", type=Path, default=None, help="GT JSON to score prediction sets against")
    p.add_argument("--names", type=lambda s: [n.strip() for n in s.split(",")], default=None,
                   help="comma-separated names for the sets (default: their file names)")
    p.add_argument("--baseline", default=None, help="the set the others are compared with (default: the best)")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples over images")
    p.add_argument("--seed", type=int, default=0, help="the resampling seed: same seed, same numbers")
    p.add_argument("--confidence", type=float, default=0.95, help="the intervals' level")
    p.add_argument("--test-images", type=int, default=413,
                   help="test set size for the val -> test gap's noise (the competition's: 413)")
    p.add_argument("--plot", type=Path, default=None,
                   help="a PNG per compared set: the bootstrap distribution and the per-image differences")


def _check_compare(args: argparse.Namespace) -> None:
    if len(args.sets) < 2:
        raise InputError("compare needs at least two sets")
    for path in args.sets:
        existing(path, "input")
    if args.gt is not None:
        existing(args.gt, "GT file")
    if not 0 < args.confidence < 1 or args.resamples < 1 or args.test_images < 2:
        raise InputError("--confidence must lie in (0, 1), --resamples be 1 or more, --test-images 2 or more")


#: Every command, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {
    "train": Command("kit.training.run:command",
                     "train DBNet with a preset (report recipes, CPU presets), resume a run", _train, _check_train),
    "pretrained": Command("kit.training.run:pretrained_command", "save a pretrained detector untrained as a checkpoint "
                          "(zero-shot), for notebooks 03-05 and ensembles", _pretrained, _check_pretrained),
    "zoo": Command("kit.experiments.zoo:command", "score every pretrained detector a wheel ships (the zoo) zero-shot "
                   "on one split: CLEval, ms per image, paired intervals against the best", _zoo, _check_zoo),
    "predict": Command("kit.inference.predict:command",
                       "predict word polygons for a folder of images: checkpoints, ensembles, TTA",
                       _predict, _check_predict),
    "export": Command("kit.inference.onnx_backend:command", "export a checkpoint's inference graph to ONNX "
                      "(normalisation, size and postprocess in its metadata)", _export, _check_export),
    "metric": Command("kit.evaluation.cleval_files:command",
                      "CLEval (the competition's variant) of a predictions JSON or a submission CSV",
                      _metric, _check_metric),
    "submit": Command("kit.evaluation.leaderboard:command", "check a leaderboard CSV as the leaderboard would", _submit,
                      _check_submit),
    "compare": Command("kit.reporting.compare:command", "is the gain real? paired bootstrap intervals between "
                       "prediction sets, leaderboard split noise", _compare, _check_compare),
    "sweep": Command("kit.experiments.sweep:command",
                     "notebook 02 over a grid of settings x seeds, with a ledger and a summary", _sweep, _check_sweep),
    "search": Command("kit.experiments.search:command", "hyper-parameter search (Optuna) over any setting, pruned "
                      "on the per-epoch val H-mean; workers on several processes or machines join one study",
                      _search, _check_search),
    "soup": Command("kit.inference.soup:command", "average several checkpoints' weights into one checkpoint", _soup,
                    _check_soup),
    "synth": Command("kit.data.synth:command", "generate the synthetic receipt dataset (the embedded default data)",
                     _synth, _check_synth),
    "demo": Command("kit.experiments.pipeline:demo_command", "the main job: notebooks 01-05 on the synthetic receipts",
                    _demo),
    "reproduce": Command("kit.experiments.pipeline:reproduce_command",
                         "a report's notebook sequence and comparison table", _reproduce, _check_data_dir),
}


def build_parser() -> argparse.ArgumentParser:
    """``python -m kit`` with one sub-command per entry of :data:`COMMANDS`."""
    parser = _Parser(prog="python -m kit", description="Every command of the kit; "
                                     "python -m kit COMMAND --help shows a command's options.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.options(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: list[str]) -> None:
    """Parse and check the arguments, then import the command's module and run it."""
    args = build_parser().parse_args(argv)
    args.argv = list(argv[1:])  # the command's own arguments, for the workers a --jobs command starts
    command = COMMANDS[args.command]
    command.check(args)
    name, function = command.target.split(":")
    getattr(importlib.import_module(name), function)(args)


def run_cli(command: str | None = None, argv: list[str] | None = None) -> None:
    """Run ``python -m kit`` (or one ``command`` with ``argv``) under the error convention."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("KIT_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    try:
        main([command, *args] if command else args)
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"error: {err}  (--debug shows the traceback)", file=sys.stderr)
        raise SystemExit(2) from None
