"""Compatibility fixes for the pinned OpenMMLab stack (filled in by the model work)."""
