"""The experiments room: the notebook sequence (the demo, a report's reproduction) and sweeps over settings."""
