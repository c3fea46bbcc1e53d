"""Distillation: the teacher's kernels inside labelled words only, its normalisation, its settings, a run with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import kit.training.loop as loop_module
from kit.inference.predict import image_tensor
from kit.model.checkpoint import Checkpoint
from kit.model.factory import build_model
from kit.training.config import (
    resolve_config,
)
from kit.training.run import train
from kit.training.teacher import Teacher, distilled_targets
from tests.conftest import receipt_images
from tests.training.helpers import tiny


def test_distilled_targets_keep_the_teachers_kernels_inside_labelled_words_only() -> None:
    gt = torch.zeros(1, 1, 4, 6)
    gt[..., 1, 1] = 1.0  # a word the teacher misses keeps the dataset's kernel
    region = torch.zeros(1, 1, 4, 6)
    region[..., :, :3] = 1.0  # the labelled words' dilated polygons
    teacher = torch.zeros(1, 1, 4, 6)
    teacher[..., 2, :] = torch.tensor([0.9, 0.31, 0.3, 0.9, 0.9, 0.9])  # fires across a labelled and an unlabelled word
    out = distilled_targets(gt, region, teacher, 0.3)
    expected = torch.zeros(1, 1, 4, 6)
    expected[..., 1, 1] = 1.0
    expected[..., 2, :2] = 1.0  # above 0.3 and labelled; the unlabelled text (columns 3-5) becomes negative
    assert torch.equal(out, expected)


@pytest.mark.slow
def test_a_teacher_sees_the_batch_in_its_own_normalisation(tiny_checkpoint: Path) -> None:
    student = build_model("ppocr_det", pretrained=True)  # mean = std = 0.5
    teacher = Teacher([Checkpoint.load(tiny_checkpoint).build_model()], 0.3, student.config.mean, student.config.std)
    pixels = torch.rand(1, 3, 8, 8)
    as_student = (pixels - 0.5) / 0.5
    own, (scale, shift) = teacher.models[0].config, teacher.inputs[0]
    as_teacher = (pixels - torch.tensor(own.mean).view(1, 3, 1, 1)) / torch.tensor(own.std).view(1, 3, 1, 1)
    assert own.mean != student.config.mean
    assert torch.allclose(as_student * scale + shift, as_teacher, atol=1e-6)


def test_zoo_members_teach_by_name_and_several_teachers_average_their_maps(synth_dir: Path) -> None:
    """teacher="ppocr_v6_tiny,ppocr_det": both zoo members, built from their wheels, their maps averaged before the
    threshold (checked against the two detectors run by hand)."""
    config = resolve_config("ppocr_cpu", teacher="ppocr_v6_tiny, ppocr_det")
    assert config.teacher == ["ppocr_v6_tiny", "ppocr_det"] == config.teachers
    assert resolve_config("ppocr_cpu", teacher=["ppocr_det"]).teacher == "ppocr_det"
    with pytest.raises(ValueError, match="teacher must name one or more"):
        resolve_config("ppocr_cpu", teacher=[])
    student = build_model("ppocr_det", pretrained=True)
    teacher = Teacher.from_config(config, student, torch.device("cpu"))
    image, _ = image_tensor(receipt_images(synth_dir)[0], 320, student)  # in the student's normalisation
    pixels = image * 0.5 + 0.5
    batch = {"image": image, "gt": torch.zeros(1, 1, 320, 320), "thresh_mask": torch.ones(1, 1, 320, 320)}
    maps = []
    for name in config.teachers:  # each in its own normalisation
        model = build_model(name, pretrained=True).eval()
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (model.config.mean, model.config.std))
        with torch.no_grad():
            maps.append(model((pixels - mean) / std)["prob"])
    expected = ((maps[0] + maps[1]) / 2 > 0.3).float()
    assert torch.equal(teacher.targets(batch)["gt"], expected)
    assert not torch.equal(expected, (maps[0] > 0.3).float())  # the average is not one teacher's map


@pytest.mark.slow
def test_teacher_settings_are_validated(synth_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="teacher='start' distils the run's own pretrained detector"):
        resolve_config("smoke", teacher="start")
    with pytest.raises(ValueError, match="teacher_thresh"):
        resolve_config("ppocr_cpu", teacher="start", teacher_thresh=1.0)
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*absent.ckpt"):
        train(tiny(synth_dir, tmp_path, teacher=str(tmp_path / "absent.ckpt"), run_name="no-teacher"), progress=False)
    assert not (tmp_path / "no-teacher").exists()


@pytest.mark.slow
def test_a_run_with_a_teacher_learns_the_teachers_labelled_kernels(synth_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """teacher='start': every step's loss sees the dataset's kernels united with zero-shot PP-OCR's map (> 0.3)
    inside the labelled regions, computed here independently from the batch the loss received."""
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    real_loss = loop_module.db_loss

    def recording_loss(outputs, batch, config=None):
        seen.append((batch["image"].clone(), batch["gt"].clone(), batch["thresh_mask"].clone()))
        return real_loss(outputs, batch, config)

    real_targets = Teacher.targets
    originals: list[torch.Tensor] = []

    def keep_original(self, batch):
        originals.append(batch["gt"].clone())
        return real_targets(self, batch)

    monkeypatch.setattr(loop_module, "db_loss", recording_loss)
    monkeypatch.setattr(Teacher, "targets", keep_original)
    config = tiny(synth_dir, tmp_path, arch="ppocr_det", pretrained=True, thresh_branch=False, teacher="start",
                  epochs=1, schedule=[[0, 640]], run_name="distil")
    train(config, progress=False)
    zero_shot = build_model("ppocr_det", pretrained=True).eval()
    grown = 0.0
    for (image, gt, region), original in zip(seen, originals, strict=True):
        with torch.no_grad():
            prob = zero_shot(image)["prob"]
        assert torch.equal(gt, torch.maximum(original, ((prob > 0.3) & (region > 0)).float()))
        grown += float(gt.sum() - original.sum())
    assert len(seen) == 2 and grown > 0  # the teacher's kernels are wider than the targets' at shrink 0.4

