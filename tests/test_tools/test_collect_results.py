"""tools/analysis_tools/collect_results.py on the --out files of several
benchmarks at once (docs/evaluation.md: ``results/*.json``)."""
import json

from tests.test_tools.tiny_project import load_tool


def _result(tmp_path, name, dataset, miou, fbiou, se=None):
    metrics = {'mIoU': miou, 'FB-IoU': fbiou, 'num_episodes': 1000}
    if se is not None:
        metrics.update({'mIoU_se': se, 'FB-IoU_se': se})
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps(dict(metrics=metrics,
                                    test_dataset=dict(seed=0, **dataset))))
    return str(path)


def test_each_benchmark_gets_its_mean_over_its_own_folds(tmp_path):
    """COCO-20i's four folds and FSS-1000 (no fold) in one table: each
    row's mean is over its benchmark's folds. It used to take the folds of
    every benchmark, so neither COCO nor FSS got a mean."""
    tool = load_tool('analysis_tools/collect_results.py')
    coco = dict(type='COCO20iDataset', shots=1)
    files = [
        _result(tmp_path, f'coco_f{f}', dict(coco, fold=f), 50.0 + f, 70.0,
                0.4) for f in range(4)
    ]
    fss = dict(type='FSS1000Dataset', shots=1)
    files.append(_result(tmp_path, 'fss', fss, 80.0, 90.0))
    md = str(tmp_path / 'table.md')
    tool.main(files + ['--markdown', md])
    lines = open(md).read().splitlines()
    coco = next(x for x in lines if x.startswith('| COCO20iDataset | 1 | mI'))
    # folds 50..53 +- 0.4: mean 51.5 +- sqrt(4 * 0.16) / 4 = 0.2
    assert coco.rstrip().endswith('| 51.50 ± 0.20 |'), coco
    fss = next(x for x in lines if x.startswith('| FSS1000Dataset | 1 | mI'))
    assert fss.rstrip().endswith('| 80.00 | 80.00 |'), fss
