"""Command line: ``python -m kit synth`` makes the synthetic data, ``python -m kit demo`` runs the main job,
``python -m kit reproduce hrnet_w44 [--smoke]`` runs a report's notebook sequence."""

from __future__ import annotations

import argparse
from pathlib import Path

from kit.cli import run_cli
from kit.paths import OUTPUTS, SYNTH_DIR
from kit.pipeline import reproduce, run_main_job
from kit.synth import DEFAULT_COUNTS, generate_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="generate the synthetic receipt dataset")
    synth.add_argument("--out", type=Path, default=SYNTH_DIR)
    synth.add_argument("--seed", type=int, default=0)
    for split, count in DEFAULT_COUNTS.items():
        synth.add_argument(f"--{split}", type=int, default=count, help=f"images in {split}")
    demo = sub.add_parser("demo", help="run the notebook pipeline on the embedded synthetic data")
    demo.add_argument("--out", type=Path, default=OUTPUTS / "notebooks")
    again = sub.add_parser("reproduce", help="run a report's notebook sequence and comparison table")
    again.add_argument("report", help="a report preset: efficientnet_b3, convnext_tiny, convnext_small, hrnet_w44")
    again.add_argument("--data-dir", default="data/receipts")
    again.add_argument("--smoke", action="store_true", help="the CPU smoke preset instead of the report's")
    again.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    if args.command == "synth":
        out = generate_dataset(args.out, {split: getattr(args, split) for split in DEFAULT_COUNTS}, args.seed)
        print(f"synthetic dataset written to {out}")
    elif args.command == "demo":
        for path in run_main_job(args.out):
            print(f"executed {path}")
    else:
        print(f"outputs in {reproduce(args.report, args.data_dir, args.smoke, args.out)}")


if __name__ == "__main__":
    run_cli(main)
