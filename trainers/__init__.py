"""Training and measurement of single trials (pure PyTorch and NumPy; no Ray, no store)."""
