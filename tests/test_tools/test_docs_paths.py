"""Paths the documentation names exist, and its config examples build.

Scans README.md, docs/*.md and the text (docstrings, comments, messages) of
dcama_mm/, tools/ and configs/ for paths of repository files
(``configs/...py``, ``tools/...py|sh``, ``docs/...md``); ``{a,b}``
alternatives are expanded, ``{name}`` placeholders (format strings) are
skipped.
"""
import glob
import itertools
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import dcama_mm  # noqa: F401  (registers the modules)
from mmseg.registry import MODELS
from tests.test_tools.tiny_project import REPO_ROOT

#: A repository path not inside another path (``tests/test_tools/x.py``
#: is not ``tools/x.py``).
PATH = re.compile(r'(?<![\w./-])((?:configs|tools|docs)/[\w./{},*-]*\w'
                  r'\.(?:py|sh|md))')
EXAMPLES = osp.join(REPO_ROOT, 'configs', 'examples')


def _documents():
    names = ['README.md'] + sorted(
        glob.glob(osp.join(REPO_ROOT, 'docs', '*.md')))
    for top in ('dcama_mm', 'tools', 'configs'):
        names += sorted(
            glob.glob(osp.join(REPO_ROOT, top, '**', '*.py'), recursive=True))
    return [osp.relpath(osp.join(REPO_ROOT, n), REPO_ROOT) for n in names]


def _expand(path):
    """The paths a ``{a,b}`` pattern stands for; none for ``{name}``."""
    parts = re.split(r'\{([^{}]*)\}', path)
    fixed, alts = parts[0::2], parts[1::2]
    if any(',' not in alt for alt in alts):
        return []
    return [
        ''.join(f + p for f, p in zip(fixed, picked + ('', )))
        for picked in itertools.product(*(alt.split(',') for alt in alts))
    ]


def _named_paths():
    for doc in _documents():
        with open(osp.join(REPO_ROOT, doc), encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                for match in PATH.finditer(line):
                    for path in _expand(match.group(1)):
                        if '*' not in path:
                            yield doc, number, path


def test_expand():
    assert _expand('configs/a_{x,y}_{0,1}.py') == [
        'configs/a_x_0.py', 'configs/a_x_1.py', 'configs/a_y_0.py',
        'configs/a_y_1.py'
    ]
    assert _expand('configs/a_fold{fold}.py') == []
    assert PATH.findall('see tests/test_tools/test_x.py and tools/t.py') \
        == ['tools/t.py']


def test_named_paths_exist():
    missing = [
        f'{doc}:{number}: {path}' for doc, number, path in _named_paths()
        if not osp.exists(osp.join(REPO_ROOT, path))
    ]
    assert not missing, 'paths that do not exist:\n' + '\n'.join(missing)


def test_swap_backbone_example_equals_the_shipped_r50_config():
    """configs/examples/my_r50_coco_fold1_5shot.py inherits the Swin-B
    experiment and replaces its backbone: the config equals the shipped
    ResNet-50 fold 1 5-shot config, and the model builds as one."""
    init_default_scope('mmseg')
    example = Config.fromfile(osp.join(EXAMPLES,
                                       'my_r50_coco_fold1_5shot.py'))
    shipped = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'dcama_r50_coco_fold1_5shot.py'))
    ours, theirs = example.to_dict(), shipped.to_dict()
    assert ours['model'].pop('cpu_parallel_images') is None
    assert ours == theirs
    assert [example[f'{s}_dataloader'].dataset.fold
            for s in ('train', 'val', 'test')] == [1, 1, 1]
    assert example.test_dataloader.dataset.shots == 5
    model = MODELS.build(example.model)
    reference = MODELS.build(shipped.model)
    assert type(model.backbone).__name__ == 'BlockFeatureResNet'
    assert model.backbone.num_blocks == (3, 4, 6, 3)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {
        k: tuple(v.shape)
        for k, v in reference.state_dict().items()
    }
    # without _delete_=True, Swin's keys reach the ResNet and are refused
    merged = example.model.copy()
    merged.backbone = dict(
        Config.fromfile(osp.join(EXAMPLES, 'my_swinb_coco_fold1_5shot.py'))
        .model.backbone, **{k: v for k, v in example.model.backbone.items()})
    with pytest.raises(TypeError,
                       match="BlockFeatureResNet: unknown argument 'arch'"):
        MODELS.build(merged)


def test_second_model_base_is_refused_by_mmengine(tmp_path):
    """What the example's comment warns about: a Swin leaf and another
    model base both define ``model``."""
    bases = [
        osp.join(REPO_ROOT, 'configs', 'dcama_swinb_coco_fold0.py'),
        osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'dcama_r50.py')
    ]
    path = tmp_path / 'two_models.py'
    path.write_text(f'_base_ = {bases!r}\n')
    with pytest.raises(KeyError, match='Duplicate key is not allowed'):
        Config.fromfile(str(path))
