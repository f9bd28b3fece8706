"""The pipeline's custom TFX components, one module each (component, executor
and what only they use, side by side)."""
