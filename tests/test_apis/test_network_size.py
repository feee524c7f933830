"""Network sizes below the backbone's largest stride (32) are refused by
FewShotInferencer (img_size) and tools/infer.py (--img-size); larger sizes
that are not multiples of 32 work as before."""
import logging
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from dcama_mm.apis import FewShotInferencer
from tests.test_apis.inferencer_helpers import (CONFIG_TEXT, build_tiny_model,
                                                make_image, make_mask,
                                                write_image)
from tests.test_tools.test_infer import load_tool


@pytest.fixture(scope='module')
def tiny_model():
    return build_tiny_model()


@pytest.fixture(scope='module')
def episode(tmp_path_factory):
    root = tmp_path_factory.mktemp('sizes')
    rng = np.random.default_rng(4)
    support = write_image(str(root / 'support.png'), make_image(rng, 40, 56))
    mask = str(root / 'mask.png')
    Image.fromarray(make_mask(40, 56)).save(mask)
    query = write_image(str(root / 'query.png'), make_image(rng, 37, 53))
    return root, support, mask, query


@pytest.mark.parametrize('size', [16, 24, 31, (24, 64), (64, 16)])
def test_sizes_below_the_stride_are_refused(tiny_model, size):
    with pytest.raises(ValueError) as info:
        FewShotInferencer(tiny_model, device='cpu', img_size=size)
    message = str(info.value)
    assert 'img_size' in message and '--img-size' in message
    assert 'largest stride, 32' in message
    # the pipeline's own size (a model without a config: 384x384)
    assert "config's size is 384x384" in message


@pytest.mark.parametrize('size', [32, 40, (48, 72)])
def test_larger_sizes_need_not_be_multiples_of_32(tiny_model, episode,
                                                  size):
    _, support, mask, query = episode
    inferencer = FewShotInferencer(tiny_model, device='cpu', img_size=size)
    expected = (size, size) if isinstance(size, int) else size
    assert inferencer.img_size == expected
    result = inferencer(query, support_imgs=[support], support_masks=[mask],
                        return_probs=True)['predictions']
    assert result['sem_seg'].shape == (37, 53)
    prob = result['fg_prob']
    assert np.isfinite(prob).all() and 0 <= prob.min() < prob.max() <= 1


def test_cli_refuses_a_small_img_size(episode, tiny_model, log_capture):
    root, support, mask, query = episode
    cfg = str(root / 'tiny.py')
    with open(cfg, 'w') as f:
        f.write(CONFIG_TEXT)
    ckpt = str(root / 'tiny.pth')
    torch.save(dict(state_dict=tiny_model.state_dict(), meta={}), ckpt)
    tool = load_tool('tools/infer.py')
    out = str(root / 'out')
    assert tool.main([cfg, ckpt, '--support', f'{support}:{mask}', '--query',
                      query, '--out', out, '--img-size', '16', '--device',
                      'cpu']) == 2
    errors = log_capture.messages(logging.ERROR)
    assert any('--img-size 16' in m and 'largest stride, 32' in m
               for m in errors), errors
    assert not osp.exists(osp.join(out, 'pred'))


def test_the_size_is_refused_before_the_checkpoint_is_read(tmp_path,
                                                           log_capture):
    """A too-small img_size is refused before the model is built and its
    checkpoint read: with a checkpoint that is not one (a text file) the
    error is the network size's, from the API and from tools/infer.py."""
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(CONFIG_TEXT)
    ckpt = tmp_path / 'not_a_checkpoint.pth'
    ckpt.write_text('this is not a checkpoint')
    with pytest.raises(ValueError, match='largest stride, 32') as info:
        FewShotInferencer(str(cfg), str(ckpt), device='cpu', img_size=16)
    assert 'img_size=16' in str(info.value)
    tool = load_tool('tools/infer.py')
    query = write_image(str(tmp_path / 'query.png'),
                        make_image(np.random.default_rng(0), 37, 53))
    mask = str(tmp_path / 'mask.png')
    Image.fromarray(make_mask(37, 53)).save(mask)
    assert tool.main([str(cfg), str(ckpt), '--support', f'{query}:{mask}',
                      '--query', query, '--out', str(tmp_path / 'out'),
                      '--img-size', '16', '--device', 'cpu']) == 2
    errors = log_capture.messages(logging.ERROR)
    assert len(errors) == 1 and '--img-size 16' in errors[0], errors
