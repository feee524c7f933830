"""Helpers of the episodic dataset tests (PASCAL-5i, FSS-1000)."""
import shutil
from pathlib import Path
from typing import Type

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
