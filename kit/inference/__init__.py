"""The inference room: prediction (ensembles, TTA; torch or ONNX Runtime), ONNX export, soups, the threshold
search, notebook 04's choice."""
