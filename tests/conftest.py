"""Fixtures shared by all tests: the ``device`` of the model tests."""
import pytest
import torch

from tests.device_helpers import device_params, strict_fp32


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'cuda: the CUDA case of a device-parametrised test '
        '(skipped with the reason where CUDA is unavailable; '
        '`pytest -m cuda` runs only these)')


@pytest.fixture(scope='module', params=device_params())
def device(request: pytest.FixtureRequest) -> torch.device:
    """``torch.device('cpu')``, then ``torch.device('cuda')`` where CUDA is
    available (skipped with the reason otherwise). Module-scoped, so that
    a module's fixtures can build their model once per device; on CUDA,
    TF32 is off while the module's CUDA cases run (see
    :mod:`tests.device_helpers`).
    """
    device = torch.device(request.param)
    with strict_fp32(device):
        yield device
