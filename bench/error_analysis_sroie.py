"""Error analysis on real receipts: notebook 03 under papermill on SROIE val with the lite DBNet trained on SROIE.

Run from the project root after ``python -m bench.train_sroie``: ``python -m bench.error_analysis_sroie``.
Executes ``notebooks/03_error_analysis.ipynb`` into ``outputs/bench/03_error_analysis_sroie.ipynb``
and writes the headline numbers to ``bench/results/error_analysis_sroie.md``.
"""

from __future__ import annotations

import time

from bench import write_results
from bench.shared import SROIE, sroie_or_exit
from kit.experiments.pipeline import run_notebook
from kit.paths import OUTPUTS, ROOT, expand_checkpoints
from kit.reporting import error_analysis as analysis

CHECKPOINT = "outputs/bench-sroie-lite0/checkpoints/best-*.ckpt"
RESULTS = ROOT / "bench" / "results" / "error_analysis_sroie.md"


def main() -> None:
    records = sroie_or_exit()[0]
    checkpoint = expand_checkpoints(CHECKPOINT)[0]
    start = time.perf_counter()
    executed = run_notebook("03_error_analysis.ipynb", OUTPUTS / "bench",
                            {"checkpoints": [str(checkpoint)], "data_dir": str(SROIE), "split": "val"},
                            out_name="03_error_analysis_sroie.ipynb")
    seconds = time.perf_counter() - start
    found = analysis.analyse(records, [checkpoint], progress=False)
    result = found.result
    per_image = analysis.per_image_table(result, records)
    lines = [
        "# Error analysis on SROIE val (notebook 03 under papermill)",
        "",
        f"- checkpoint: `{checkpoint.relative_to(ROOT)}` (from `python -m bench.train_sroie`); "
        f"executed notebook: `{executed.relative_to(ROOT)}` ({seconds:.0f} s)",
        f"- val CLEval over {len(records)} images: P {result.precision:.4f} R {result.recall:.4f} H {result.hmean:.4f}",
        f"- per-image H-mean: median {per_image['hmean'].median():.4f}, worst {per_image['hmean'].min():.4f} "
        f"({per_image.iloc[0]['image']}), best {per_image['hmean'].max():.4f}",
        f"- error totals: {analysis.taxonomy(result)}",
        "",
        "Diagnosis:",
        *[f"- {line}" for line in found.diagnosis()],
    ]
    write_results(RESULTS, lines)


if __name__ == "__main__":
    main()
