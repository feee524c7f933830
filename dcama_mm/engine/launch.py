# Copyright (c) dcama_mm contributors. All rights reserved.
"""Helpers shared by ``tools/train.py`` and ``tools/test.py``.

- :func:`tool_arg_parser` / :func:`parse_tool_args`: the command line both
  tools share with mmseg's (``config``, ``--work-dir``, ``--cfg-options``,
  ``--launcher``, ``--local_rank``), :func:`load_tool_config` applies it to
  the config and :func:`build_runner` checks the config and builds the
  Runner.
- :func:`check_train_config` / :func:`check_test_config` (from
  :mod:`.config_checks`) validate what a config points at (data roots,
  annotation files, checkpoints, registered model types) *before* the Runner
  builds anything, so that a typo fails in a second with a message naming
  the option, not after minutes of loading.
- :func:`setup_cpu_distributed` runs multi-process training and testing on a
  machine without GPUs: mmengine 0.10.7's ``init_dist`` calls
  ``torch.cuda.set_device`` even for the gloo backend, so the process group
  is set up here and the Runner (which then skips ``init_dist``) wraps the
  model in DDP with ``device_ids=None``.
- :func:`finish_distributed` ends a multi-process run: every rank waits for
  the others, then destroys its process group, so that no gloo or NCCL
  thread is left running while Python shuts down (which aborted a finished
  run with ``terminate called without an active exception``, exit -6).
"""
import argparse
import os
import os.path as osp
import subprocess
from typing import Callable, List, Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmseg.registry import RUNNERS

from .config_checks import (check_checkpoint, check_dataset_paths,
                            check_model_types, check_test_config,
                            check_train_config)
from .launcher_checks import check_launcher_environment
from .option_checks import check_dataloader_workers, merge_cfg_options
from .watchdog import start_launcher_watchdog


def tool_arg_parser(description: str, config_help: str,
                    work_dir_help: str) -> argparse.ArgumentParser:
    """A parser with the tools' first arguments: ``config``, ``--work-dir``.

    The tool adds its own arguments, then :func:`parse_tool_args` adds the
    last ones and parses.

    Args:
        description (str): What the tool does.
        config_help (str): The help of ``config``.
        work_dir_help (str): The help of ``--work-dir``.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    parser.add_argument('--work-dir', help=work_dir_help)
    return parser


def parse_tool_args(parser: argparse.ArgumentParser,
                    argv: Optional[Sequence[str]] = None
                    ) -> argparse.Namespace:
    """Add ``--cfg-options``, ``--launcher``, ``--local_rank`` and parse.

    ``LOCAL_RANK`` is set from ``--local_rank`` unless already set.

    Args:
        parser (argparse.ArgumentParser): From :func:`tool_arg_parser`,
            with the tool's own arguments.
        argv (Sequence[str], optional): The arguments. Defaults to None
            (``sys.argv``).

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. '
        'key="[(a,b),(c,d)]" Note that the quotation marks are necessary and '
        'that no white space is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    check_launcher_environment(parser, args.launcher)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_tool_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and apply the shared command-line options.

    Sets ``launcher``, merges ``--cfg-options`` (checked by
    :func:`~.option_checks.merge_cfg_options`: ``fold`` / ``data_root`` go
    to every dataset, other top-level variables of the file are refused),
    sets ``work_dir`` (command line > config > ``./work_dirs/<config
    name>``) and turns ``persistent_workers`` off for loaders without
    workers.

    Args:
        args (argparse.Namespace): ``config``, ``launcher``,
            ``cfg_options`` and ``work_dir``.

    Returns:
        Config: The config.

    Raises:
        FileNotFoundError: If the config file does not exist.
        ValueError: For a ``--cfg-options`` key nothing reads.
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(
            f'config: the file "{args.config}" does not exist.')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    merge_cfg_options(cfg, args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(args.config)
    check_dataloader_workers(cfg)
    return cfg


def build_runner(cfg: Config,
                 launcher: str,
                 check_config: Callable[[Config], None],
                 prepare: Optional[Callable[[], None]] = None) -> Runner:
    """Check the config and the processes, then build the Runner.

    Fails fast, before any model or data is built: checks the number of
    processes (:func:`check_world_size`) and the config (``check_config``),
    starts the watchdog that stops a torchrun worker whose launcher is gone
    (:func:`~dcama_mm.engine.watchdog.start_launcher_watchdog`), then sets
    up CPU processes (:func:`setup_cpu_distributed`) and builds
    mmengine's Runner, or mmseg's ``RUNNERS`` entry when the config names a
    ``runner_type``.

    Args:
        cfg (Config): The config (changed in place by
            :func:`setup_cpu_distributed`).
        launcher (str): The ``--launcher`` value.
        check_config (Callable): :func:`check_train_config` or
            :func:`check_test_config`.
        prepare (Callable, optional): Run once the checks have passed,
            before anything is built: what changes the work dir (e.g.
            ``--force`` setting an earlier run aside) must not happen for a
            config that is then refused. Defaults to None.

    Returns:
        Runner: The Runner.
    """
    check_world_size()
    check_config(cfg)
    if prepare is not None:
        prepare()
    start_launcher_watchdog(launcher)
    setup_cpu_distributed(cfg, launcher)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def finish_distributed(completed: bool = True) -> None:
    """End the process group of a multi-process run, if there is one.

    Called by ``tools/train.py`` and ``tools/test.py`` when their work is
    done. Without it the process group is torn down while the interpreter
    exits, and gloo's worker threads may still be alive then: the finished
    process aborts (``terminate called without an active exception``,
    SIGABRT) and torchrun reports the whole run as failed.

    Args:
        completed (bool): Whether the run ended normally; then all ranks
            meet at a barrier first, so that no rank leaves while another
            still talks to it. After an error there is no barrier (the
            other ranks may never come). Defaults to True.

    Raises:
        RuntimeError: When another rank never reaches the barrier (gloo
            notices a lost peer at once; NCCL waits for its timeout unless
            the launcher stops the run first).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if completed:
            dist.barrier()
    except Exception as err:  # noqa: BLE001 (gloo/NCCL errors vary)
        raise RuntimeError(
            f'rank {dist.get_rank()} finished, but another process of the '
            'run did not reach the end: it failed or was stopped (its error '
            'is in its own output above). The results of this run are '
            'incomplete.') from err
    finally:
        dist.destroy_process_group()


def check_world_size() -> None:
    """Check that a launcher did not start more processes than GPUs.

    Reads ``LOCAL_WORLD_SIZE`` (set by ``torchrun``). On a machine without
    CUDA any number of CPU processes is allowed (gloo backend).

    Raises:
        ValueError: If more processes per node than visible GPUs were
            started.
    """
    local_world_size = int(os.environ.get('LOCAL_WORLD_SIZE', '1'))
    if not torch.cuda.is_available():
        return
    available = torch.cuda.device_count()
    if local_world_size > available:
        raise ValueError(
            f'{local_world_size} processes (GPUS) were requested on this '
            f'node but only {available} GPU(s) are visible. Pass GPUS <= '
            f'{available} to tools/dist_train.sh / tools/dist_test.sh or set '
            'CUDA_VISIBLE_DEVICES.')


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare a multi-process run on a machine without CUDA (gloo).

    When ``launcher`` is not ``'none'`` and CUDA is not available, this
    initialises the default process group with the gloo backend from the
    environment ``torchrun`` sets (``MASTER_ADDR``, ``MASTER_PORT``,
    ``RANK``, ``WORLD_SIZE``), or ``srun``'s for ``--launcher slurm``
    (:func:`slurm_to_torch_environment`), so that the Runner skips mmengine's
    ``init_dist`` (which would call ``torch.cuda.set_device``), and sets
    ``cfg.model_wrapper_cfg`` so that DDP is built with ``device_ids=None``.
    ``cfg`` is changed in place (it is the tool's own copy).

    Args:
        cfg (Config): The config the Runner will be built from.
        launcher (str): The ``--launcher`` value.

    Returns:
        bool: Whether a CPU process group was set up.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher == 'slurm':
        slurm_to_torch_environment()
    elif launcher != 'pytorch':
        raise ValueError(
            f'--launcher {launcher} is not supported without GPUs; use '
            'tools/dist_train.sh / tools/dist_test.sh (--launcher pytorch, '
            'started by torchrun) or tools/slurm_train.sh / '
            'tools/slurm_test.sh (--launcher slurm, started by srun).')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper_cfg = ConfigDict(cfg.get('model_wrapper_cfg') or {})
    wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
    wrapper_cfg.setdefault('broadcast_buffers', False)
    wrapper_cfg.setdefault('find_unused_parameters',
                           cfg.get('find_unused_parameters', False))
    wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg['backend'] = 'gloo'
    print_log(
        f'No GPU: running {dist.get_world_size()} CPU processes with the '
        'gloo backend.',
        logger='current')
    return True


def slurm_to_torch_environment() -> None:
    """Set torch's process variables from Slurm's, as mmengine does.

    What mmengine's ``init_dist('slurm')`` does before it initialises the
    process group (which it cannot do without CUDA): ``RANK`` from
    ``SLURM_PROCID``, ``WORLD_SIZE`` from ``SLURM_NTASKS``, ``LOCAL_RANK``
    from ``SLURM_LOCALID``, ``MASTER_ADDR`` (unless set) from the first
    host of ``SLURM_NODELIST`` (``scontrol show hostname``) and
    ``MASTER_PORT`` (unless set) 29500.

    Raises:
        ValueError: When a Slurm variable is missing (the tool was not
            started by ``srun``) or ``scontrol`` cannot name the first host.
    """
    names = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise ValueError(
            f'--launcher slurm: {", ".join(missing)} not set; start the '
            'tool with srun (tools/slurm_train.sh / tools/slurm_test.sh).')
    env = os.environ
    if 'MASTER_ADDR' not in env:
        try:
            hosts = subprocess.run(
                ['scontrol', 'show', 'hostname', env['SLURM_NODELIST']],
                stdout=subprocess.PIPE, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as err:
            raise ValueError(
                '--launcher slurm: could not read the first host of '
                f'SLURM_NODELIST={env["SLURM_NODELIST"]!r} with scontrol '
                f'({err}); set MASTER_ADDR.') from err
        env['MASTER_ADDR'] = hosts.split()[0]
    env.setdefault('MASTER_PORT', '29500')
    env['RANK'] = env['SLURM_PROCID']
    env['WORLD_SIZE'] = env['SLURM_NTASKS']
    env['LOCAL_RANK'] = env.get('SLURM_LOCALID', env['SLURM_PROCID'])


def default_work_dir(config_path: str) -> str:
    """mmseg's default work directory: ``./work_dirs/<config name>``."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


__all__: List[str] = [
    'check_dataset_paths', 'check_model_types', 'check_checkpoint',
    'check_train_config', 'check_test_config', 'check_world_size',
    'setup_cpu_distributed', 'slurm_to_torch_environment',
    'default_work_dir', 'tool_arg_parser',
    'parse_tool_args', 'load_tool_config', 'build_runner',
    'finish_distributed'
]
