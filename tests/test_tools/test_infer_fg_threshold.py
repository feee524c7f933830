"""``tools/infer.py --fg-threshold``: passed to N-way calls, refused the
argparse way for a one-class call or a value outside [0, 1)."""
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from dcama_mm.apis import FewShotInferencer
from tests.test_apis.inferencer_helpers import (NET_SIZE, write_episode_files,
                                                write_tiny_model_files)
from tests.test_tools.tiny_project import load_tool


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny config + checkpoint, 2 supports (one per class), 2 queries."""
    root = tmp_path_factory.mktemp('fg_threshold')
    model, cfg_file, ckpt = write_tiny_model_files(str(root))
    supports, masks, queries = write_episode_files(
        str(root), shots=2, query_sizes=[(37, 53), (48, 96)])
    return dict(model=model, cfg=cfg_file, ckpt=ckpt, supports=supports,
                masks=masks, queries=queries, root=root,
                tool=load_tool('infer.py'))


def _args(setup, out, n_way, *extra):
    args = [setup['cfg'], setup['ckpt']]
    for name, img, mask in zip(('cat', 'dog'), setup['supports'],
                               setup['masks']):
        args += ['--support', f'{name}:{img}:{mask}' if n_way else
                 f'{img}:{mask}']
    for query in setup['queries']:
        args += ['--query', query]
    return args + ['--out', out, '--img-size', str(NET_SIZE), '--device',
                   'cpu', '--no-overlay', *extra]


@pytest.mark.parametrize('threshold', [0.0, 0.9])
def test_fg_threshold_reaches_the_n_way_call(setup, threshold):
    out = str(setup['root'] / f'out{threshold}')
    assert setup['tool'].main(
        _args(setup, out, True, '--fg-threshold', str(threshold))) == 0
    sets = {name: ([img], [mask]) for name, img, mask in zip(
        ('cat', 'dog'), setup['supports'], setup['masks'])}
    inferencer = FewShotInferencer(setup['model'], img_size=NET_SIZE)
    expected = inferencer(setup['queries'], support_sets=sets,
                          fg_threshold=threshold)['predictions']
    default = inferencer(setup['queries'], support_sets=sets)['predictions']
    differs = False
    for query, pred, pred05 in zip(setup['queries'], expected, default):
        saved = np.asarray(
            Image.open(osp.join(out, 'pred', osp.basename(query) + '.png')))
        np.testing.assert_array_equal(saved, pred['label_map'])
        differs |= not np.array_equal(saved, pred05['label_map'])
        if threshold == 0.0:  # every pixel's best class exceeds 0
            assert saved.min() >= 1
    assert differs, 'the threshold did not change the label maps'


@pytest.mark.parametrize('n_way,value,words', [
    (False, '0.3', 'given with one class'),
    (True, '1.0', 'must be a probability in [0, 1)'),
    (True, '-0.1', 'must be a probability in [0, 1)'),
    (True, 'nan', 'must be a probability in [0, 1)'),
])
def test_fg_threshold_refused_before_the_model(setup, capsys, n_way, value,
                                               words):
    out = setup['root'] / f'bad_{n_way}_{value}'
    with pytest.raises(SystemExit) as exit_:
        setup['tool'].main(_args(setup, str(out), n_way, '--fg-threshold',
                                 value))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert 'error: argument --fg-threshold:' in err
    assert words in err
    assert not out.exists()


def test_one_class_with_the_default_threshold_is_accepted(setup):
    """0.5 is the one-class rule itself (the API accepts it too)."""
    out = str(setup['root'] / 'one_class')
    assert setup['tool'].main(
        _args(setup, out, False, '--fg-threshold', '0.5')) == 0
    expected = FewShotInferencer(setup['model'], img_size=NET_SIZE)(
        [setup['queries'][0]], support_imgs=setup['supports'],
        support_masks=setup['masks'])['predictions'][0]
    saved = np.asarray(Image.open(osp.join(
        out, 'pred', osp.basename(setup['queries'][0]) + '.png')))
    np.testing.assert_array_equal(saved, expected * 255)
