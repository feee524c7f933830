"""``tools/test.py --seeds``, the bootstrap standard errors in ``--out``
and ``tools/analysis_tools/collect_results.py`` on the tiny project."""
import json
import os
import os.path as osp

import numpy as np
import pytest


import dcama_mm  # noqa: F401  (registers the model)
from tests.test_tools.tiny_project import (TEST_EPISODES, TOOLS, load_tool,
                                           make_tiny_project, run)


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """Tiny data, config and a checkpoint of the randomly initialised
    model (the figures only need to be reproducible)."""
    root = str(tmp_path_factory.mktemp('seeds'))
    return make_tiny_project(root)


def _test(project, name, *extra):
    out = osp.join(project['root'], f'{name}.json')
    proc = run([
        'python',
        osp.join(TOOLS, 'test.py'), project['config'], project['ckpt'],
        '--work-dir', osp.join(project['root'], name), '--out', out, *extra
    ], cwd=project['root'])
    with open(out) as f:
        return json.load(f), proc.stdout


def test_seeds_report_per_seed_figures_and_statistics(project):
    record, log = _test(project, 'seeds', '--seeds', '0', '1', '2')
    # one model load for the three runs
    assert log.count('Load checkpoint from') == 1
    per_seed = record['per_seed']
    assert [s['seed'] for s in per_seed] == [0, 1, 2]
    assert record['test_dataset']['seed'] == [0, 1, 2]
    mious = [s['metrics']['mIoU'] for s in per_seed]
    metrics = record['metrics']
    assert metrics['num_seeds'] == 3
    assert metrics['num_episodes'] == TEST_EPISODES
    assert metrics['mIoU'] == pytest.approx(np.mean(mious))
    assert metrics['mIoU_std'] == pytest.approx(np.std(mious, ddof=1))
    assert metrics['mIoU_ci95'] == pytest.approx(
        4.3027 * np.std(mious, ddof=1) / np.sqrt(3), rel=1e-4)
    for seed_record in per_seed:
        assert seed_record['metrics']['mIoU_se'] >= 0
    # the table: one line per seed, then mean, std and the 95% interval
    assert 'Test figures of 3 seeds (7 episodes each' in log
    first = per_seed[0]['metrics']
    assert (f"{first['mIoU']:6.2f} +- {first['mIoU_se']:.2f}") in log
    for row in ('mean ', 'std ', '95% '):
        assert any(line.startswith(row) for line in log.splitlines())

    # each seed's figures are those of a plain run with that seed
    single, _ = _test(project, 'seed1', '--cfg-options',
                      'test_dataloader.dataset.seed=1')
    assert single['metrics']['mIoU'] == per_seed[1]['metrics']['mIoU']
    assert single['metrics']['FB-IoU'] == per_seed[1]['metrics']['FB-IoU']
    assert single['metrics']['mIoU_se'] == per_seed[1]['metrics']['mIoU_se']


def _run_test_tool(project, *extra):
    return run([
        'python',
        osp.join(TOOLS, 'test.py'), project['config'], project['ckpt'],
        *extra
    ], cwd=project['root'], check=False)


@pytest.mark.parametrize('extra, words', [
    (['--seeds', '1', '1'], 'argument --seeds: expected distinct'),
    (['--seeds', '0', '0', '1'], 'argument --seeds: expected distinct'),
    (['--seeds', '0', '1', '--show-dir', 'x'],
     'argument --seeds: cannot be combined with --show / --show-dir'),
])
def test_seeds_reject_bad_values(project, extra, words):
    proc = _run_test_tool(project, *extra)
    # argparse's own way: usage, one error line naming the option, exit 2
    assert proc.returncode == 2, proc.stdout
    assert 'Traceback' not in proc.stdout
    assert 'usage: test.py' in proc.stdout
    assert f'test.py: error: {words}' in proc.stdout
    assert 'Epoch(test)' not in proc.stdout


def test_out_refuses_an_existing_file(project):
    out = osp.join(project['root'], 'precious.json')
    with open(out, 'w') as f:
        f.write('{"precious": 1}\n')
    proc = _run_test_tool(project, '--out', out, '--work-dir',
                          osp.join(project['root'], 'refused'))
    assert proc.returncode == 2, proc.stdout
    assert 'Traceback' not in proc.stdout
    assert (f'test.py: error: argument --out: {out} already exists'
            in proc.stdout)
    assert 'give another file name, or pass --force' in proc.stdout
    # refused before the Runner: no episode ran, no work dir was made
    assert 'Epoch(test)' not in proc.stdout
    assert not osp.exists(osp.join(project['root'], 'refused'))
    with open(out) as f:
        assert json.load(f) == {'precious': 1}
    # a folder is no metrics file either
    folder = osp.join(project['root'], 'folder.json')
    os.makedirs(folder, exist_ok=True)
    proc = _run_test_tool(project, '--out', folder)
    assert proc.returncode == 2, proc.stdout
    assert f'argument --out: {folder} is a folder' in proc.stdout

    # --force overwrites it with the metrics
    record, _ = _test(project, 'precious', '--force')
    assert 'precious' not in record
    assert record['checkpoint'] == osp.abspath(project['ckpt'])
    assert 0 <= record['metrics']['mIoU'] <= 100


def test_collect_results_builds_the_paper_table(project, tmp_path):
    tool = load_tool('analysis_tools/collect_results.py')

    def result(fold, shots, miou, fbiou, se=None):
        metrics = {'mIoU': miou, 'FB-IoU': fbiou, 'num_episodes': 1000}
        if se is not None:
            metrics.update({'mIoU_se': se, 'FB-IoU_se': se / 2})
        path = tmp_path / f'f{fold}_{shots}.json'
        path.write_text(json.dumps(dict(
            config=f'configs/dcama_swinb_coco_fold{fold}.py',
            metrics=metrics,
            test_dataset=dict(type='COCO20iDataset', fold=fold, shots=shots,
                              seed=0))))
        return str(path)

    files = [result(f, 1, 50.0 + f, 70.0 + f, 0.6) for f in range(4)]
    files += [result(0, 5, 55.4, 75.0), result(1, 5, 60.3, 76.0)]
    md, csv = str(tmp_path / 't.md'), str(tmp_path / 't.csv')
    tool.main(files + ['--markdown', md, '--csv', csv])
    table = open(md).read()
    lines = table.splitlines()
    assert lines[0].startswith('| benchmark | shots | metric | fold 0 |')
    row = next(x for x in lines if '| 1 | mIoU |' in x)
    # folds 50..53 +- 0.6; mean 51.5 +- sqrt(4 * 0.36) / 4 = 0.3
    assert '50.00 ± 0.60' in row and '53.00 ± 0.60' in row
    assert row.rstrip().endswith('51.50 ± 0.30 |')
    row5 = next(x for x in lines if '| 5 | mIoU |' in x)
    # folds 2 and 3 are missing: no mean over folds
    assert '55.40' in row5 and row5.count('–') == 3
    rows = open(csv).read().splitlines()
    assert rows[0] == ('benchmark,shots,metric,fold 0,fold 0 se,fold 1,'
                       'fold 1 se,fold 2,fold 2 se,fold 3,fold 3 se,mean,'
                       'mean se')
    assert rows[1].startswith('COCO20iDataset,1,mIoU,50.00,0.60,51.00,')
    with pytest.raises(ValueError, match='twice'):
        tool.main([files[0], files[0], '--markdown', md])
    bad = tmp_path / 'bad.json'
    bad.write_text('{"metrics": {}}')
    with pytest.raises(ValueError, match='bad.json'):
        tool.main([str(bad), '--markdown', md])


def test_out_refuses_an_existing_file_on_two_processes(project):
    """Only rank 0 writes --out; every rank refuses before the Runner."""
    out = osp.join(project['root'], 'precious_dist.json')
    with open(out, 'w') as f:
        f.write('{"precious": 2}\n')
    proc = run([
        'bash',
        osp.join(TOOLS, 'dist_test.sh'), project['config'], project['ckpt'],
        '2', '--out', out, '--work-dir',
        osp.join(project['root'], 'refused_dist')
    ], cwd=project['root'], check=False)
    assert proc.returncode != 0, proc.stdout
    assert proc.stdout.count(f'argument --out: {out} already exists') == 2
    assert 'Epoch(test)' not in proc.stdout
    assert not osp.exists(osp.join(project['root'], 'refused_dist'))
    with open(out) as f:
        assert json.load(f) == {'precious': 2}
