"""RandomStateHook restores states whose tensors mmengine's resume put on
the training device (``map_location=get_device()``: cuda on a GPU)."""
import random

import numpy as np
import torch

from dcama_mm.engine.hooks.random_state_hook import (capture_random_state,
                                                     restore_random_state)


def _on(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _on(v, device) for k, v in value.items()}
    return value


def test_states_loaded_onto_the_device_are_restored(device):
    state = _on(capture_random_state(), device)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_random_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(again[0], expected[0])
    assert np.array_equal(again[1], expected[1])
    assert again[2] == expected[2]
