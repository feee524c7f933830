# Copyright (c) dcama_mm contributors. All rights reserved.
"""What identifies a test run in a ``tools/test.py --out`` file, and the
check that keeps ``tools/analysis_tools/collect_results.py`` from averaging
the folds of different models or settings into one mean.

``tools/test.py --out`` writes a ``run`` section (:func:`run_identity`):
the config and checkpoint files, the checkpoint's size and SHA-256, the
model and backbone and the settings that change the figures. An older file
without it is read from its ``test_dataset`` and ``test_cfg`` sections
(:func:`identity_of_record`): its settings are known, its model is not.
"""
import hashlib
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

#: Fields that must agree between the files of one benchmark in one table
#: (the config and checkpoint differ per fold by design: one model a fold).
COMPARED_FIELDS = ('model_type', 'backbone_type', 'backbone_depth',
                   'backbone_arch', 'replay_reference', 'resize_to_original',
                   'amp')
#: Fields an older ``--out`` file (no ``run`` section) cannot tell.
MODEL_FIELDS = ('model_type', 'backbone_type', 'backbone_depth',
                'backbone_arch')


def file_sha256(path: str, chunk_size: int = 1 << 22) -> str:
    """The SHA-256 (hex) of a file, read in chunks of ``chunk_size``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    """``cfg.get(key)`` for a dict or ConfigDict, ``default`` otherwise."""
    return cfg.get(key, default) if hasattr(cfg, 'get') else default


def run_identity(cfg: Any, config: str, checkpoint: str) -> Dict[str, Any]:
    """The ``run`` section of a ``--out`` file.

    Args:
        cfg (Config): The test config, after ``--cfg-options`` and
            ``--amp`` were applied.
        config (str): The config file given on the command line.
        checkpoint (str): The checkpoint file given on the command line.

    Returns:
        dict: ``config``, ``checkpoint`` (absolute paths; a URL as given),
        ``checkpoint_size`` (bytes), ``checkpoint_sha256`` (the whole
        file's; both None when the checkpoint is no local file),
        ``model_type``, ``backbone_type``, ``backbone_depth``,
        ``backbone_arch`` (a Swin's ``arch``: ``'base'``, ``'tiny'``, ...;
        None for a ResNet), ``shots``, ``replay_reference``,
        ``resize_to_original``, ``amp``.
    """
    model = _get(cfg, 'model', {}) or {}
    backbone = _get(model, 'backbone', {}) or {}
    test_cfg = _get(model, 'test_cfg', {}) or {}
    dataset = _get(_get(cfg, 'test_dataloader', {}), 'dataset', {}) or {}
    local = osp.isfile(checkpoint)  # not a URL or another backend's path
    return dict(
        config=osp.abspath(config),
        checkpoint=osp.abspath(checkpoint) if local else checkpoint,
        checkpoint_size=os.path.getsize(checkpoint) if local else None,
        checkpoint_sha256=file_sha256(checkpoint) if local else None,
        model_type=_get(model, 'type'),
        backbone_type=_get(backbone, 'type'),
        backbone_depth=_get(backbone, 'depth'),
        backbone_arch=_arch(_get(backbone, 'arch')),
        shots=_get(dataset, 'shots'),
        replay_reference=bool(_get(dataset, 'replay_reference', False)),
        resize_to_original=bool(_get(test_cfg, 'resize_to_original',
                                     False)),
        amp=_get(test_cfg, 'amp', False) or False,
    )


def _arch(arch: Any) -> Any:
    """A backbone's ``arch`` as recorded: a name in lower case (mmpretrain
    reads ``'Base'`` as ``'base'``), a custom dict as a plain dict."""
    if isinstance(arch, str):
        return arch.lower()
    return dict(arch) if hasattr(arch, 'items') else arch


def identity_of_record(record: Dict[str, Any]) -> Dict[str, Any]:
    """The run identity of a read ``--out`` file.

    A file without a ``run`` section (written before it was added) gets its
    settings from ``test_dataset`` / ``test_cfg`` (the defaults where they
    are missing) and None for the model fields (unknown, not compared).
    """
    run = record.get('run')
    if isinstance(run, dict):
        return dict(run)
    dataset = record.get('test_dataset') or {}
    test_cfg = record.get('test_cfg') or {}
    identity = {field: None for field in MODEL_FIELDS}
    identity.update(
        config=record.get('config'),
        checkpoint=record.get('checkpoint'),
        shots=dataset.get('shots'),
        replay_reference=bool(dataset.get('replay_reference', False)),
        resize_to_original=bool(test_cfg.get('resize_to_original', False)),
        amp=test_cfg.get('amp', False) or False)
    return identity


def describe(identity: Dict[str, Any]) -> str:
    """A short note on a run identity (for the table's notes)."""
    if identity.get('model_type') is None:
        model = 'model not recorded (an --out file older than its "run" ' \
            'section)'
    else:
        depth = identity.get('backbone_depth')
        arch = identity.get('backbone_arch')
        size = depth if depth is not None else arch  # -50 / -base
        model = f"{identity['model_type']}, {identity.get('backbone_type')}" \
            + (f'-{size}' if isinstance(size, (int, str)) else '')
    sha = identity.get('checkpoint_sha256')
    ckpt = osp.basename(str(identity.get('checkpoint')))
    ckpt += f' (sha256 {sha[:8]})' if sha else ''
    settings = [name for name in ('resize_to_original', )
                if identity.get(name)]
    if identity.get('amp'):
        settings.append(f"amp {identity['amp']}")
    return f'{model}, checkpoint {ckpt}' + ''.join(
        f', {s}' for s in settings)


def check_same_model(
        files: List[Tuple[str, str, Dict[str, Any], Optional[int]]]) -> None:
    """Refuse a table whose files of one benchmark differ in a compared
    field (:data:`COMPARED_FIELDS`) where both files record it.

    Args:
        files (list[tuple]): ``(path, benchmark, identity, fold)`` per
            file.

    Raises:
        ValueError: Naming the two files, the field and both values; or
            the two files of one benchmark that test one checkpoint (same
            SHA-256) on two folds.
    """
    _check_one_fold_per_checkpoint(files)
    earlier: Dict[str, List[Tuple[str, Dict[str, Any]]]] = {}
    for path, bench, identity, _ in files:
        # each earlier file: a field that one of them lacks (an older
        # file) is compared with the others that record it
        for other_path, other in earlier.get(bench, []):
            field = _first_difference(other, identity)
            if field is not None:
                raise ValueError(
                    f'collect_results: {other_path!r} and {path!r} are both '
                    f'{bench} but differ in {field} ({other.get(field)!r} '
                    f'vs {identity.get(field)!r}): their folds would be '
                    'averaged as one model. Collect the files of each model '
                    'and setting in a table of its own.')
        earlier.setdefault(bench, []).append((path, identity))


def _first_difference(a: Dict[str, Any],
                      b: Dict[str, Any]) -> Optional[str]:
    """The first compared field both record and that differs, or None
    (a ``run`` section written before a field was added lacks it)."""
    unknown = a.get('model_type') is None or b.get('model_type') is None
    for field in COMPARED_FIELDS:
        if unknown and field in MODEL_FIELDS or field not in a \
                or field not in b:
            continue
        if a.get(field) != b.get(field):
            return field
    return None


def _check_one_fold_per_checkpoint(
        files: List[Tuple[str, str, Dict[str, Any], Optional[int]]]) -> None:
    """Refuse one checkpoint (same SHA-256) tested on two folds of one
    benchmark: a fold's model is trained on the other folds' classes, so
    its figure on another fold is no few-shot figure."""
    seen: Dict[Tuple[str, str], Tuple[str, Optional[int]]] = {}
    for path, bench, identity, fold in files:
        sha = identity.get('checkpoint_sha256')
        if not sha:
            continue
        other_path, other_fold = seen.setdefault((bench, sha), (path, fold))
        if other_fold != fold:
            raise ValueError(
                f'collect_results: {other_path!r} (fold {other_fold}) and '
                f'{path!r} (fold {fold}) test the same checkpoint (sha256 '
                f'{sha[:8]}) on two folds of {bench}: a fold\'s model is '
                "trained on the other folds' classes. Test each fold with "
                'the checkpoint trained for it.')
