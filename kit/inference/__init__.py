"""The inference room: prediction (ensembles, TTA), soups, the threshold search, notebook 04's choice."""
