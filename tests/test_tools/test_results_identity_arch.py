"""``collect_results.py`` tells Swin architectures apart: a Swin-T and a
Swin-B share ``backbone_type`` and ``backbone_depth`` (None), so their
folds were averaged into one mean with exit status 0."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from dcama_mm.evaluation.run_identity import run_identity
from tests.test_tools.tiny_project import REPO_ROOT, load_tool

SWINB_FOLD = osp.join(REPO_ROOT, 'configs', 'dcama_swinb_coco_fold{}.py')


def _out_file(tmp_path, fold, arch=None, drop=()):
    """A ``--out`` record of a shipped Swin-B fold config (``arch``
    changed), its ``run`` section from :func:`run_identity`."""
    config = SWINB_FOLD.format(fold)
    cfg = Config.fromfile(config)
    if arch is not None:
        cfg.model.backbone.arch = arch
    identity = run_identity(cfg, config, f'fold{fold}_{arch}.pth')
    identity['checkpoint_sha256'] = f'{fold}{arch}'.ljust(64, '0')
    for key in drop:  # a run section written before the field existed
        identity.pop(key)
    record = dict(
        metrics={'mIoU': 40.0 + fold, 'FB-IoU': 60.0, 'num_episodes': 1000},
        test_dataset=dict(type='COCO20iDataset', fold=fold, shots=1, seed=0),
        test_cfg={}, run=identity)
    path = tmp_path / f'f{fold}_{arch}.json'
    path.write_text(json.dumps(record))
    return str(path)


def test_run_records_the_swin_arch():
    cfg = Config.fromfile(SWINB_FOLD.format(0))
    assert run_identity(cfg, 'a.py', 'x.pth')['backbone_arch'] == 'base'
    cfg.model.backbone.arch = 'tiny'
    assert run_identity(cfg, 'a.py', 'x.pth')['backbone_arch'] == 'tiny'


def test_collect_refuses_folds_of_two_swin_archs(tmp_path):
    tool = load_tool('analysis_tools/collect_results.py')
    files = [_out_file(tmp_path, 0, 'base'), _out_file(tmp_path, 1, 'tiny')]
    with pytest.raises(ValueError, match=r"differ in backbone_arch \('base' "
                       r"vs 'tiny'\)"):
        tool.main(files)
    # the same arch: one table, the mean over both folds
    files[1] = _out_file(tmp_path, 1, 'base')
    table = tool.main(files)
    row = next(x for x in table.splitlines() if '| mIoU |' in x)
    assert '40.50' in row
    assert 'FewShotSegmentor, BlockFeatureSwin-base, checkpoint' in table
    # a run section without the field (written before it) is still read
    files[1] = _out_file(tmp_path, 1, 'tiny', drop=('backbone_arch', ))
    assert '40.50' in tool.main(files)
    # ... and the files that record it are compared with each other
    files = [_out_file(tmp_path, 0, 'tiny', drop=('backbone_arch', )),
             _out_file(tmp_path, 1, 'tiny'), _out_file(tmp_path, 2, 'base')]
    with pytest.raises(ValueError, match='differ in backbone_arch'):
        tool.main(files)
