"""The training room: the run's typed config and presets, the loop's pieces, and the run with its logs and
checkpoints. Imports nothing heavy itself (the presets are read by ``--help``)."""
