"""A tiny dataset and DCAMA config for the Runner / tools tests.

The data is generated in COCO 2014's real format (images +
``instances_*2014.json``) and converted with the project's real
``tools/dataset_converters/coco20i.py``; the config inherits the demo config
(``configs/dcama_synthetic_demo.py``) and shrinks it: a ResNet-50 of base
width 8 with random weights, 64x64 input, a handful of episodes.
"""
import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys
from types import ModuleType
from typing import Dict, List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO_ROOT, 'tools')
DEMO_CONFIG = osp.join(REPO_ROOT, 'configs', 'dcama_synthetic_demo.py')

#: Episodes of the tiny config's splits (an odd test count exercises the
#: padding of the last rank in 2-process runs).
TRAIN_EPISODES = 8
VAL_EPISODES = 6
TEST_EPISODES = 7

TINY_CONFIG = """\
_base_ = [{demo!r}]

data_root = {data_root!r}
img_scale = (64, 64)
train_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=img_scale, keep_ori_seg=False),
    dict(type='PackFewShotInputs'),
]
test_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=img_scale, keep_ori_seg=True),
    dict(type='PackFewShotInputs'),
]
model = dict(
    # frozen, as in the paper's configs (the demo trains its backbone)
    backbone=dict(base_channels=8, stem_channels=8, frozen=True),
    decode_head=dict(in_channels=(32, 64, 128, 256)))
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        data_root=data_root, num_episodes={train}, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    dataset=dict(
        data_root=data_root, num_episodes={val}, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=2,
    dataset=dict(
        data_root=data_root, num_episodes={test}, pipeline=test_pipeline))
max_epochs = 2
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
         end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(max_keep_ckpts=-1))
"""


def make_tiny_data(root: str) -> str:
    """Generate and convert a tiny COCO-20i-format dataset under ``root``.

    Returns:
        str: The data root (``root/coco``).
    """
    from dcama_mm.datasets.synthetic import make_synthetic_coco
    data_root = osp.join(root, 'coco')
    make_synthetic_coco(
        data_root,
        num_classes=8,
        images_per_class=(8, 6),
        image_size=(48, 64),
        seed=0)
    converter = load_tool('dataset_converters/coco20i.py')
    converter.main([data_root, '--nproc', '1'])
    return data_root


def write_tiny_config(path: str, data_root: str) -> str:
    """Write the tiny config to ``path`` and return ``path``."""
    with open(path, 'w') as f:
        f.write(
            TINY_CONFIG.format(
                demo=DEMO_CONFIG,
                data_root=data_root,
                train=TRAIN_EPISODES,
                val=VAL_EPISODES,
                test=TEST_EPISODES))
    return path


def write_random_checkpoint(config: str, path: str, seed: int = 0) -> str:
    """A checkpoint of ``config``'s model with random weights (drawn after
    ``torch.manual_seed(seed)``, so reproducible); returns ``path``."""
    import torch
    from mmengine.config import Config
    from mmseg.registry import MODELS

    import dcama_mm  # noqa: F401  (registers the model)
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(config).model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def make_tiny_project(root: str,
                      checkpoint: str = 'random.pth') -> Dict[str, str]:
    """Tiny data, its config (``tiny.py``) and a random-weight checkpoint
    (:func:`write_random_checkpoint`), all under ``root``.

    Returns:
        dict: ``root``, ``config`` and ``ckpt`` (paths).
    """
    config = write_tiny_config(osp.join(root, 'tiny.py'),
                               make_tiny_data(root))
    ckpt = write_random_checkpoint(config, osp.join(root, checkpoint))
    return dict(root=root, config=config, ckpt=ckpt)


def load_tool(relpath: str) -> ModuleType:
    """Import a script of ``tools/`` as a module (without running it)."""
    path = osp.join(TOOLS, relpath)
    name = 'tool_' + relpath.replace('/', '_').replace('.py', '')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port that is free now (for torchrun's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tool_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment of the tool subprocesses: this Python, one thread each."""
    env = dict(os.environ)
    env.update(
        PYTHON=sys.executable,
        PORT=str(free_port()),
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
        PYTHONUNBUFFERED='1')
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env.get(
        'PATH', '')
    if extra:
        env.update(extra)
    return env


def run(cmd: List[str],
        cwd: str,
        env: Optional[Dict[str, str]] = None,
        timeout: int = 300,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; on failure show its output in the assertion."""
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env if env is not None else tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    if check:
        assert proc.returncode == 0, (
            f'{" ".join(cmd)} failed ({proc.returncode}):\n'
            f'{proc.stdout[-6000:]}')
    return proc
