"""Receipt text detection competition kit: data, DBNet, training, CLEval, submission."""

import warnings

from kit._torchvision import install as _install_torchvision_hook

_install_torchvision_hook()
# huggingface_hub (through timm) imports tqdm.auto, which warns in notebooks without ipywidgets;
# the kit's own progress bars are plain text, so the warning says nothing useful there.
warnings.filterwarnings("ignore", message="IProgress not found")
