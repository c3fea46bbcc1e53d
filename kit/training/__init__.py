"""The training room: the run's typed config and presets, the loop's pieces, the run with logs and checkpoints."""
