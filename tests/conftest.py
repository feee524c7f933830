"""Fixtures shared by all tests: the ``device`` of the model tests and
``log_capture`` (the messages of mmengine's current logger)."""
import logging
from typing import List

import pytest
import torch
from mmengine.logging import MMLogger

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


class LogCapture(logging.Handler):
    """Collects the messages of mmengine's current logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int) -> List[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def log_capture() -> LogCapture:
    """A :class:`LogCapture` on mmengine's current logger for the test."""
    logger = MMLogger.get_current_instance()
    handler = LogCapture()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
