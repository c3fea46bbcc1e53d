"""The model room: DBNet on timm, the PP-OCR detector, their DB head, factory, loss, postprocess, checkpoints."""
