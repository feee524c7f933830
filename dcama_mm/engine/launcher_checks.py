# Copyright (c) dcama_mm contributors. All rights reserved.
"""``--launcher pytorch`` without ``torchrun``: said before anything runs.

``--launcher pytorch`` reads the process variables that ``torchrun`` (or
``python -m torch.distributed.launch``) sets. Started without it,
``tools/train.py`` / ``tools/test.py`` used to load the config and then fail
in torch's rendezvous (``environment variable RANK expected, but not
set``), which does not say how to start the tool. The check here runs when
the arguments are parsed.
"""
import argparse
import os
from typing import List

#: The variables ``--launcher pytorch`` needs (``LOCAL_RANK`` may also come
#: from ``--local_rank``).
TORCHRUN_VARIABLES = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


def missing_torchrun_variables() -> List[str]:
    """The variables of :data:`TORCHRUN_VARIABLES` that are not set."""
    return [name for name in TORCHRUN_VARIABLES if name not in os.environ]


def check_launcher_environment(parser: argparse.ArgumentParser,
                               launcher: str) -> None:
    """Refuse ``--launcher pytorch`` outside ``torchrun`` the argparse way
    (one line, exit status 2), naming the variables and how to start it.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        launcher (str): The ``--launcher`` value.
    """
    missing = missing_torchrun_variables() if launcher == 'pytorch' else []
    if missing:
        parser.error(
            f'argument --launcher: pytorch needs the variables torchrun sets '
            f'({", ".join(missing)} not set): start the tool with torchrun, '
            'e.g. bash tools/dist_train.sh CONFIG N or bash '
            'tools/dist_test.sh CONFIG CHECKPOINT N, or leave --launcher '
            'out to run one process.')


__all__ = [
    'TORCHRUN_VARIABLES', 'missing_torchrun_variables',
    'check_launcher_environment'
]
