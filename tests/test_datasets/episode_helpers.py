"""Helpers of the episodic dataset tests (PASCAL-5i, FSS-1000)."""
import shutil
from pathlib import Path
from typing import Callable, Type

import torch
import torch.distributed as dist

from dcama_mm.datasets import BaseFewShotDataset

#: Load, resize to 40x40 (keeping the original query mask) and pack.
PIPELINE = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=(40, 40), keep_ori_seg=True),
    dict(type='PackFewShotInputs'),
]


def build_unserialised(dataset_type: Type[BaseFewShotDataset],
                       **kwargs) -> BaseFewShotDataset:
    """Build the dataset; unserialised unless asked (serialising runs a
    0.5 s ``gc.collect`` here)."""
    kwargs.setdefault('serialize_data', False)
    return dataset_type(**kwargs)


def copy_data_root(data_root: str, tmp_path: Path, name: str) -> str:
    """A private copy of a synthetic dataset, for breaking it."""
    root = str(tmp_path / name)
    shutil.copytree(data_root, root)
    return root


def _in_process_group(rank: int, world: int, init_file: str,
                      worker: Callable, args: tuple) -> None:
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank,
        world_size=world)
    try:
        worker(rank, *args)
    finally:
        dist.destroy_process_group()


def run_two_ranks(worker: Callable, tmp_path: Path, *args) -> None:
    """Run ``worker(rank, *args)`` in 2 forked processes of one gloo
    process group and check that both exit cleanly."""
    ctx = torch.multiprocessing.get_context('fork')
    init_file = str(tmp_path / 'init')
    procs = [
        ctx.Process(
            target=_in_process_group,
            args=(rank, 2, init_file, worker, args)) for rank in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0]
