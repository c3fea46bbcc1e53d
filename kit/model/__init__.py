"""The model room: DBNet on timm backbones, the PP-OCR detector, their shared DB head, the factory, the loss, the
postprocess that turns their maps into polygons, and checkpoints. Imports nothing heavy itself."""
