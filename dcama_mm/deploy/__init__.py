# Copyright (c) dcama_mm contributors. All rights reserved.
"""Deployment: ONNX graphs of a few-shot segmentor and their runtime
(onnx and onnxruntime are optional dependencies, imported when used)."""
from .onnx_export import (OPSET, export_onnx, traceable,
                          traceable_window_reverse)
from .onnx_predictor import ONNXFewShotPredictor, ONNXFewShotSegmentor

__all__ = [
    'OPSET', 'export_onnx', 'traceable',
    'traceable_window_reverse', 'ONNXFewShotPredictor',
    'ONNXFewShotSegmentor'
]
