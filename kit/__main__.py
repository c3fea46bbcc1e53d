"""``python -m kit COMMAND``: every command of the kit in one family; ``python -m kit COMMAND --help`` for its options.

The pipeline commands (``demo``, ``reproduce``, ``synth``) live here; the others hand their
arguments to the module of the same name (``python -m kit metric ...`` is ``python -m
kit.metric ...``). Modules are imported only for the command that runs, so ``--help`` is quick.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from kit.cli import run_cli
from kit.paths import OUTPUTS, SYNTH_DIR
from kit.presets import REPORT_PRESETS

#: Commands that are a module's own command line: name -> (module, what it does).
MODULE_COMMANDS = {
    "train": ("kit.train", "train DBNet with a preset (report recipes, CPU presets), resume a run"),
    "predict": ("kit.predict", "predict word polygons for a folder of images: checkpoints, ensembles, TTA"),
    "metric": ("kit.metric", "CLEval (the competition's variant) of a predictions JSON or a submission CSV"),
    "submit": ("kit.submit", "check a leaderboard CSV as the leaderboard would"),
    "soup": ("kit.soup", "average several checkpoints' weights into one checkpoint"),
}
#: The synthetic dataset's default split sizes (kit.synth.DEFAULT_COUNTS, kept here so --help imports nothing).
SYNTH_COUNTS = {"train": 150, "val": 30, "test": 20}


def main(argv: list[str] | None = None) -> None:
    if argv and argv[0] in MODULE_COMMANDS:
        importlib.import_module(MODULE_COMMANDS[argv[0]][0]).main(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    synth = sub.add_parser("synth", help="generate the synthetic receipt dataset (the embedded default data)")
    synth.add_argument("--out", type=Path, default=SYNTH_DIR, help="the dataset folder (competition layout)")
    synth.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    for split, count in SYNTH_COUNTS.items():
        synth.add_argument(f"--{split}", type=int, default=count, help=f"images in {split}")
    demo = sub.add_parser("demo", help="the main job: notebooks 01-05 on the synthetic receipts")
    demo.add_argument("--out", type=Path, default=OUTPUTS / "notebooks", help="where the executed notebooks go")
    again = sub.add_parser("reproduce", help="a report's notebook sequence and comparison table")
    again.add_argument("report", choices=REPORT_PRESETS, help="the report's preset")
    again.add_argument("--data-dir", default="data/receipts", help="the competition data (competition layout)")
    again.add_argument("--smoke", action="store_true", help="the CPU smoke preset instead of the report's")
    again.add_argument("--out", type=Path, default=None, help="output folder (default outputs/reproduce-REPORT)")
    for name, (_, help_) in MODULE_COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)  # listed here; handled above
    args = parser.parse_args(argv)

    if args.command == "synth":
        from kit.synth import generate_dataset

        out = generate_dataset(args.out, {split: getattr(args, split) for split in SYNTH_COUNTS}, args.seed)
        print(f"synthetic dataset written to {out}")
    elif args.command == "demo":
        from kit.pipeline import run_main_job

        for path in run_main_job(args.out):
            print(f"executed {path}")
    else:
        from kit.pipeline import reproduce

        print(f"outputs in {reproduce(args.report, args.data_dir, args.smoke, args.out)}")


if __name__ == "__main__":
    run_cli(main)
