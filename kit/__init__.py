"""Receipt text detection competition kit: data, DBNet, training, CLEval, submission.

The rooms, in the pipeline's order (each imports only the ones before it; ``tests/test_imports.py``
checks it): ``data``, ``model`` and ``evaluation``, ``training`` and ``inference``, ``reporting``,
``experiments``; ``cli`` on top; ``errors``, ``files``, ``paths``, ``geometry``, ``runtime``,
``workers`` underneath.

Importing the kit changes the process on purpose, in one named call: :func:`kit._torchvision.prepare_process`
(an import hook that lets torchvision's Python part load beside the CPU torch wheel, and one warning
silenced). It imports no torch.
"""

from kit._torchvision import prepare_process

prepare_process()
