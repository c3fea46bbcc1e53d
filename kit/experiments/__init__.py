"""The experiments room: the notebook sequence (demo, a report's reproduction) and sweeps over settings."""
