"""``tools/test.py --out`` records what identifies the run, and
``tools/analysis_tools/collect_results.py`` refuses to average the folds
of different models or settings into one mean."""
import copy
import hashlib
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config


import dcama_mm  # noqa: F401  (registers the model)
from tests.test_tools.tiny_project import (TOOLS, load_tool, make_tiny_project,
                                           run)


@pytest.fixture(scope='module')
def record(tmp_path_factory):
    """A real ``--out`` file of the tiny project (random weights)."""
    root = str(tmp_path_factory.mktemp('identity'))
    project = make_tiny_project(root)
    config, ckpt = project['config'], project['ckpt']
    out = osp.join(root, 'out.json')
    run([
        'python', osp.join(TOOLS, 'test.py'), config, ckpt, '--work-dir',
        osp.join(root, 'work'), '--out', out
    ], cwd=root)
    with open(out) as f:
        return dict(record=json.load(f), config=config, ckpt=ckpt)


def test_out_records_the_model_checkpoint_and_settings(record):
    run_ = record['record']['run']
    with open(record['ckpt'], 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    assert run_['config'] == osp.abspath(record['config'])
    assert run_['checkpoint'] == osp.abspath(record['ckpt'])
    assert run_['checkpoint_sha256'] == sha
    assert run_['checkpoint_size'] == os.path.getsize(record['ckpt'])
    assert run_['model_type'] == 'FewShotSegmentor'
    assert run_['backbone_type'] == 'BlockFeatureResNet'
    assert run_['backbone_depth'] == 50
    assert run_['shots'] == record['record']['test_dataset']['shots']
    assert run_['replay_reference'] is False
    assert run_['resize_to_original'] is False
    assert run_['amp'] is False


def _write(tmp_path, name, rec, fold, **run_changes):
    rec = copy.deepcopy(rec)
    rec['test_dataset'].update(type='COCO20iDataset', fold=fold)
    rec.setdefault('run', {}).update(run_changes)
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps(rec))
    return str(path)


@pytest.mark.parametrize('field,value', [('backbone_type', 'SwinB'),
                                         ('backbone_depth', 101),
                                         ('resize_to_original', True),
                                         ('replay_reference', True),
                                         ('amp', 'bfloat16')])
def test_collect_refuses_folds_of_two_models(record, tmp_path, field, value):
    """The folds of another backbone / setting used to be averaged with
    these into one mean (exit 0)."""
    tool = load_tool('analysis_tools/collect_results.py')
    a = _write(tmp_path, 'f0', record['record'], 0)
    b = _write(tmp_path, 'f1', record['record'], 1,
               checkpoint_sha256='1' * 64, **{field: value})
    with pytest.raises(ValueError) as err:
        tool.main([a, b, '--markdown', str(tmp_path / 't.md')])
    message = str(err.value)
    assert 'f0.json' in message and 'f1.json' in message
    assert f'differ in {field}' in message and repr(value) in message
    assert not (tmp_path / 't.md').exists()


def test_collect_keeps_same_model_and_reads_older_files(record, tmp_path):
    """Same model, other fold checkpoints: one mean; an older file (no
    ``run`` section) is read, its settings compared, its model not."""
    tool = load_tool('analysis_tools/collect_results.py')
    rec = copy.deepcopy(record['record'])
    rec['metrics'].update({'mIoU': 40.0, 'mIoU_se': None})
    files = [
        _write(tmp_path, 'f0', rec, 0),
        _write(tmp_path, 'f1', rec, 1, checkpoint='/other/fold1.pth',
               checkpoint_sha256='0' * 64),
    ]
    old = copy.deepcopy(rec)
    old.pop('run')
    old['test_dataset'].update(type='COCO20iDataset', fold=2)
    (tmp_path / 'old.json').write_text(json.dumps(old))
    files.append(str(tmp_path / 'old.json'))
    table = tool.main(files + ['--markdown', str(tmp_path / 't.md')])
    row = next(x for x in table.splitlines() if '| mIoU |' in x)
    assert row.count('40.00') == 4  # three folds and their mean
    assert 'model not recorded' in table and 'sha256 00000000' in table
    # an older file with another setting is still refused
    old['test_cfg'] = dict(resize_to_original=True)
    (tmp_path / 'old.json').write_text(json.dumps(old))
    with pytest.raises(ValueError, match='differ in resize_to_original'):
        tool.main(files + ['--markdown', str(tmp_path / 't2.md')])


def test_collect_refuses_one_checkpoint_on_two_folds(record, tmp_path):
    """A fold-0 model tested on fold 1 (same file, same SHA-256): refused
    on the command line with one line, exit status 1."""
    a = _write(tmp_path, 'f0', record['record'], 0)
    b = _write(tmp_path, 'f1', record['record'], 1)
    five = copy.deepcopy(record['record'])
    five['test_dataset']['shots'] = 5
    c = _write(tmp_path, 'f0_5shot', five, 0)  # same fold, 5-shot: fine
    proc = run(['python', osp.join(TOOLS, 'analysis_tools',
                                   'collect_results.py'), a, c, b],
               cwd=str(tmp_path), check=False)
    assert proc.returncode == 1
    sha = record['record']['run']['checkpoint_sha256'][:8]
    assert proc.stdout.strip().splitlines()[-1] == (
        f"collect_results: {a!r} (fold 0) and {b!r} (fold 1) test the same "
        f"checkpoint (sha256 {sha}) on two folds of COCO20iDataset: a "
        "fold's model is trained on the other folds' classes. Test each "
        'fold with the checkpoint trained for it.')


def test_a_checkpoint_that_is_no_local_file_is_recorded_as_given():
    """A URL (mmengine loads those): no size nor hash, no error after the
    test has run."""
    from dcama_mm.evaluation.run_identity import run_identity
    cfg = Config(dict(model=dict(type='FewShotSegmentor'),
                      test_dataloader=dict(dataset=dict(shots=5))))
    url = 'https://example.com/dcama.pth'
    identity = run_identity(cfg, 'a.py', url)
    assert identity['checkpoint'] == url
    assert identity['checkpoint_sha256'] is None
    assert identity['checkpoint_size'] is None
    assert identity['shots'] == 5 and identity['backbone_type'] is None
