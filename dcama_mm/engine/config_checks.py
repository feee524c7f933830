# Copyright (c) dcama_mm contributors. All rights reserved.
"""Checks of a config before the Runner is built.

:func:`check_train_config` / :func:`check_test_config` validate what a
config points at (data roots, annotation files, checkpoints, registered
model types) and the keys of the Runner's loops (:func:`check_loop_cfgs`)
*before* the Runner builds anything, so that a typo fails in a second with
a message naming the option, not after minutes of loading.
"""
import copy
import difflib
import os
import os.path as osp
from typing import (Any, Callable, Iterator, List, Optional, Sequence,
                    Tuple)

from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg.registry import LOOPS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from ..models.utils.checkpoint_files import check_checkpoint_file
from ..utils.checks import accepted_arguments, check_keys
from .dataloader_checks import check_dataloader_cfgs
from .randomness_checks import check_randomness

#: Keys of a dataset config that name a directory / a file (relative paths
#: are joined with ``data_root``, as mmengine's ``BaseDataset`` does).
_FILE_KEYS = ('ann_file', )
_SUBDIR_KEYS = ('split_dir', )
_PREFIX_KEYS = ('data_prefix', )


def _is_remote(path: str) -> bool:
    """Whether ``path`` is a URL or a remote URI (not checked locally)."""
    return '://' in path


def _join(data_root: Optional[str], path: str) -> str:
    """Join ``path`` with ``data_root`` the way ``BaseDataset`` does."""
    if data_root and not osp.isabs(path) and not _is_remote(path):
        return osp.join(data_root, path)
    return path


def _local_values(cfg: dict,
                  keys: Sequence[str]) -> Iterator[Tuple[str, str]]:
    """Yield ``(key, value)`` of the ``keys`` of ``cfg`` that name a local
    path (a non-empty string that is not a URL)."""
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, str) and value and not _is_remote(value):
            yield key, value


def _require(path: str,
             exists: Callable[[str], bool],
             kind: str,
             option: str,
             advice: str,
             resolved: bool = False) -> None:
    """Raise ``FileNotFoundError`` if ``exists(path)`` is False.

    The message is ``'<option>: the <kind> "<path>" does not exist. '``
    (with the working directory when ``resolved``) followed by ``advice``,
    in which ``{option}`` is replaced by ``option``.
    """
    if exists(path):
        return
    where = f' (resolved from "{os.getcwd()}")' if resolved else ''
    raise FileNotFoundError(f'{option}: the {kind} "{path}" does not '
                            f'exist{where}. ' +
                            advice.replace('{option}', option))


def _iter_datasets(cfg: Any, option: str) -> Iterator[Tuple[dict, str]]:
    """Yield ``(dataset_cfg, option_name)`` of a (possibly wrapped) dataset.

    Dataset wrappers (``dataset=...``, ``datasets=[...]``) are followed.
    """
    if not isinstance(cfg, dict):
        return
    yield cfg, option
    if isinstance(cfg.get('dataset'), dict):
        yield from _iter_datasets(cfg['dataset'], f'{option}.dataset')
    if isinstance(cfg.get('datasets'), (list, tuple)):
        for i, sub in enumerate(cfg['datasets']):
            yield from _iter_datasets(sub, f'{option}.datasets.{i}')


def check_dataset_paths(dataset_cfg: dict, option: str) -> None:
    """Check that the directories and files a dataset config names exist.

    Checked: ``data_root`` (directory), ``ann_file`` (file; a ``{fold}``
    placeholder is filled with the config's ``fold``), ``split_dir`` and the
    entries of ``data_prefix`` (directories); relative paths are taken under
    ``data_root``. Empty values and URLs are skipped. Wrapped datasets are
    followed.

    Args:
        dataset_cfg (dict): The dataset config, e.g.
            ``cfg.train_dataloader.dataset``.
        option (str): Its name in the config, used in the messages, e.g.
            ``'train_dataloader.dataset'``.

    Raises:
        FileNotFoundError: If a named directory or file does not exist.
    """
    for ds_cfg, name in _iter_datasets(dataset_cfg, option):
        data_root = ds_cfg.get('data_root')
        for key, root in _local_values(ds_cfg, ('data_root', )):
            _require(
                root, osp.isdir, 'directory', f'{name}.{key}',
                'Prepare the dataset as the README describes, link it '
                'there, or set --cfg-options {option}=/path/to/data.',
                resolved=True)
        for key, value in _local_values(ds_cfg, _FILE_KEYS):
            if 'fold' in ds_cfg:
                value = value.replace('{fold}', str(ds_cfg['fold']))
            _require(
                _join(data_root, value), osp.isfile, 'file', f'{name}.{key}',
                'Create it with the dataset converter in '
                'tools/dataset_converters/ or set '
                '--cfg-options {option}=/path/to/file.')
        for key, value in _local_values(ds_cfg, _SUBDIR_KEYS):
            _require(
                _join(data_root, value), osp.isdir, 'directory',
                f'{name}.{key}', 'Put the split lists there (see the '
                'README) or set --cfg-options {option}=DIR.')
        for key in _PREFIX_KEYS:
            prefix = ds_cfg.get(key)
            if not isinstance(prefix, dict):
                continue
            for sub_key, value in _local_values(prefix, list(prefix)):
                _require(
                    _join(data_root, value), osp.isdir, 'directory',
                    f'{name}.{key}.{sub_key}', 'Check the dataset layout in '
                    'the README or set --cfg-options {option}=DIR.')


def _iter_typed_cfgs(cfg: Any, option: str) -> Iterator[Tuple[dict, str]]:
    """Yield every nested dict with a ``type`` key and its option name."""
    if isinstance(cfg, dict):
        if 'type' in cfg:
            yield cfg, option
        for key, value in cfg.items():
            yield from _iter_typed_cfgs(value, f'{option}.{key}')
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from _iter_typed_cfgs(value, f'{option}.{i}')


def check_model_types(model_cfg: dict, option: str = 'model') -> None:
    """Check that the model's parts name registered types.

    The model config itself and its ``backbone``, ``decode_head`` and
    ``data_preprocessor`` (and anything nested in them with a string
    ``type``, except initialisation configs) must be found in mmseg's
    ``MODELS`` registry (or in the registry a ``scope.Type`` prefix names).

    Args:
        model_cfg (dict): The ``model`` config.
        option (str): Its name in the messages. Defaults to ``'model'``.

    Raises:
        ValueError: If a ``type`` is not registered.
    """
    init_default_scope('mmseg')
    for sub_cfg, name in _iter_typed_cfgs(model_cfg, option):
        if '.init_cfg' in name or name.endswith('init_cfg'):
            continue
        type_name = sub_cfg['type']
        if not isinstance(type_name, str):
            continue  # a class object given directly
        if MODELS.get(type_name) is not None:
            continue
        known = sorted(MODELS.module_dict)
        close = difflib.get_close_matches(type_name, known, n=3)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        backbones = [k for k in known if k.startswith('BlockFeature')]
        raise ValueError(
            f'{name}.type="{type_name}" is not a registered model type in '
            f"mmseg's MODELS registry.{hint} dcama_mm's backbones are "
            f'{", ".join(backbones) or "BlockFeatureSwin, BlockFeatureResNet"}'
            '; check the spelling and that `custom_imports` imports '
            'dcama_mm.')


def _pretrained_checkpoints(cfg: Any,
                            option: str) -> Iterator[Tuple[str, str]]:
    """Yield ``(path, option)`` of the checkpoints a model config loads.

    Both ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and mmseg's
    older ``pretrained='path'`` are found, at any depth.
    """
    if isinstance(cfg, dict):
        if cfg.get('type') == 'Pretrained' and isinstance(
                cfg.get('checkpoint'), str):
            yield cfg['checkpoint'], f'{option}.checkpoint'
        for key, value in cfg.items():
            if key == 'pretrained' and isinstance(value, str):
                yield value, f'{option}.pretrained'
            else:
                yield from _pretrained_checkpoints(value, f'{option}.{key}')
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from _pretrained_checkpoints(value, f'{option}.{i}')


def check_checkpoint(path: Optional[str], option: str) -> None:
    """Check that a checkpoint file exists and is a PyTorch checkpoint
    (URLs are not checked; nothing is unpickled).

    Args:
        path (str, optional): The checkpoint path; None is accepted.
        option (str): The option that named it, used in the message.

    Raises:
        FileNotFoundError: If a local checkpoint file does not exist.
        NotACheckpointError: If it is not a PyTorch checkpoint (a text
            file, random bytes, a truncated zip archive).
    """
    if not path or _is_remote(path):
        return
    _require(
        path,
        osp.isfile,
        'checkpoint',
        option,
        'Download or convert it (see the README and '
        'tools/model_converters/) or give another path.',
        resolved=True)
    check_checkpoint_file(path, option)


#: The loop the Runner builds for a loop config without ``type``.
_DEFAULT_LOOPS = dict(val_cfg='ValLoop', test_cfg='TestLoop')
#: Arguments the Runner gives a loop itself (a loop without ``type`` is
#: also given its ``evaluator``).
_RUNNER_ARGUMENTS = ('self', 'runner', 'dataloader')


def _loop_type(section: str, loop_cfg: dict
               ) -> Tuple[Any, Tuple[str, ...], Tuple[str, ...]]:
    """The loop class the Runner builds from ``loop_cfg``, the keys it
    reads besides the loop's arguments (``type``, ``_scope_``, or
    ``by_epoch``) and the arguments the Runner gives it itself."""
    given = _RUNNER_ARGUMENTS
    if 'type' in loop_cfg:
        loop_type, extra = loop_cfg['type'], ('type', '_scope_')
    elif section == 'train_cfg':
        # mmengine's Runner.build_train_loop: by_epoch picks the loop
        if 'by_epoch' not in loop_cfg:
            raise ValueError(
                'train_cfg needs a `type` (e.g. type=\'EpochBasedTrainLoop\''
                ') or `by_epoch` (True: epochs, False: iterations) for '
                f'mmengine to pick the training loop; got {dict(loop_cfg)}.')
        loop_type = ('EpochBasedTrainLoop'
                     if loop_cfg['by_epoch'] else 'IterBasedTrainLoop')
        extra = ('by_epoch', )
    else:
        loop_type, extra = _DEFAULT_LOOPS[section], ()
        given = given + ('evaluator', )
    if isinstance(loop_type, str):
        init_default_scope('mmseg')
        loop_type = LOOPS.get(loop_type)
    return loop_type, extra, given


def check_loop_cfgs(cfg: Config, sections: Sequence[str]) -> None:
    """Refuse unknown keys of the Runner's loop configs.

    mmengine passes ``train_cfg`` / ``val_cfg`` / ``test_cfg`` to the loop
    class as keyword arguments once the model and the data are built, and a
    typo (``train_cfg.max_epoch``) then ends in a bare ``TypeError`` deep
    inside the Runner. Checked here, with the loop's own arguments.

    Args:
        cfg (Config): The full config.
        sections (Sequence[str]): The loop configs to check.

    Raises:
        UnknownOptionError: Naming the loop, the key and the closest valid
            key. An unregistered loop type is left to the Runner.
    """
    for section in sections:
        loop_cfg = cfg.get(section)
        if not isinstance(loop_cfg, dict):
            continue
        loop_type, extra, given = _loop_type(section, loop_cfg)
        if not isinstance(loop_type, type):
            continue
        valid = [a for a in accepted_arguments(loop_type) if a not in given]
        check_keys(loop_type.__name__, f'{section} key', loop_cfg,
                   valid + list(extra))


def check_optim_wrapper(cfg: Config) -> None:
    """Build the optimizer wrapper's constructor as the Runner does, only
    without the model: its checks of ``optim_wrapper`` (the keys of
    ``paramwise_cfg`` and ``custom_keys``, the wrapper's arguments) run
    before anything is built, not when training starts.

    Raises:
        UnknownOptionError: A key the constructor or the wrapper does not
            read.
    """
    optim_cfg = cfg.get('optim_wrapper')
    if not isinstance(optim_cfg, dict) or 'constructor' not in optim_cfg:
        return  # mmengine's default constructor, or a dict of wrappers
    optim_cfg = copy.deepcopy(dict(optim_cfg))
    init_default_scope('mmseg')
    OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type=optim_cfg.pop('constructor'),
             optim_wrapper_cfg=optim_cfg,
             paramwise_cfg=optim_cfg.pop('paramwise_cfg', None)))


def check_train_config(cfg: Config) -> None:
    """Validate a training config before the Runner is built.

    Checks the model's registered types, the keys of ``train_cfg`` and
    ``val_cfg`` (:func:`check_loop_cfgs`), the ``ResizeEpisode`` scales of
    the training and validation pipelines (:func:`check_pipeline_sizes`),
    ``optim_wrapper``
    (:func:`check_optim_wrapper`), the ``Pretrained`` checkpoints of
    the model (e.g. the converted backbone weights under ``checkpoints/``),
    ``load_from``, an explicit ``resume`` checkpoint, and the data paths of
    the training and validation datasets.

    Args:
        cfg (Config): The full config, after ``--cfg-options`` are merged.

    Raises:
        ValueError: On an unregistered model type or an unknown loop key
            (``UnknownOptionError``).
        FileNotFoundError: On a missing data root, annotation file or
            checkpoint.
    """
    check_model_types(cfg.model)
    check_randomness(cfg)
    check_loop_cfgs(cfg, ('train_cfg', 'val_cfg'))
    check_dataloader_cfgs(cfg, ('train_dataloader', 'val_dataloader'))
    from .pipeline_checks import check_pipeline_sizes  # (imports this)
    check_pipeline_sizes(cfg, ('train_dataloader', 'val_dataloader'))
    check_optim_wrapper(cfg)
    for path, option in _pretrained_checkpoints(cfg.model, 'model'):
        check_checkpoint(path, option)
    check_checkpoint(cfg.get('load_from'), 'load_from')
    for loader in ('train_dataloader', 'val_dataloader'):
        loader_cfg = cfg.get(loader)
        if isinstance(loader_cfg, dict) and isinstance(
                loader_cfg.get('dataset'), dict):
            check_dataset_paths(loader_cfg['dataset'], f'{loader}.dataset')


def check_test_config(cfg: Config) -> None:
    """Validate a test config before the Runner is built.

    Checks the model's registered types, the keys of ``test_cfg``, the
    ``ResizeEpisode`` scales of the test pipeline, the checkpoint to test
    (``load_from``) and the data paths of the test dataset. The backbone's
    ``Pretrained`` weights are not needed: the tested checkpoint holds them.

    Args:
        cfg (Config): The full config, after ``--cfg-options`` are merged
            and with ``load_from`` set to the checkpoint.

    Raises:
        ValueError: On an unregistered model type or an unknown loop key
            (``UnknownOptionError``).
        FileNotFoundError: On a missing data root, annotation file or
            checkpoint.
    """
    check_model_types(cfg.model)
    check_randomness(cfg)
    check_loop_cfgs(cfg, ('test_cfg', ))
    check_dataloader_cfgs(cfg, ('test_dataloader', ))
    from .pipeline_checks import check_pipeline_sizes  # (imports this)
    check_pipeline_sizes(cfg, ('test_dataloader', ))
    check_checkpoint(cfg.get('load_from'), 'checkpoint')
    loader_cfg = cfg.get('test_dataloader')
    if isinstance(loader_cfg, dict) and isinstance(
            loader_cfg.get('dataset'), dict):
        check_dataset_paths(loader_cfg['dataset'], 'test_dataloader.dataset')


__all__: List[str] = [
    'check_dataset_paths', 'check_model_types', 'check_checkpoint',
    'check_loop_cfgs', 'check_optim_wrapper', 'check_train_config',
    'check_test_config'
]
