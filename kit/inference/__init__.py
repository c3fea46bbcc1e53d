"""The inference room: prediction from checkpoints (ensembles, TTA), weight soups, the postprocess threshold search
and the ensemble choice of notebook 04. Imports nothing heavy itself."""
