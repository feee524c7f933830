"""FewShotInferencer's inputs: paths, arrays and folders give the same
masks; bad supports and queries are refused with a clear message (a broken
query is skipped)."""
import logging
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from dcama_mm.apis import FewShotInferencer
from tests.test_apis.inferencer_helpers import NET_SIZE, make_mask


def test_input_kinds_give_the_same_masks(inferencer, episode_dir, tmp_path):
    root, support_imgs, support_masks, queries = episode_dir
    expected = inferencer(
        queries, support_imgs=support_imgs[:2],
        support_masks=support_masks[:2])['predictions']

    # arrays: BGR images, 0/1 uint8 and boolean masks
    bgr = [np.asarray(Image.open(p))[..., ::-1].copy() for p in queries]
    sup_bgr = [
        np.asarray(Image.open(p))[..., ::-1].copy() for p in support_imgs[:2]
    ]
    sup_01 = [(np.asarray(Image.open(p)) > 0).astype(np.uint8)
              for p in support_masks[:2]]
    from_arrays = inferencer(
        bgr, support_imgs=sup_bgr,
        support_masks=[sup_01[0], sup_01[1].astype(bool)])
    assert from_arrays['img_paths'] == [None] * len(queries)
    for got, exp in zip(from_arrays['predictions'], expected):
        np.testing.assert_array_equal(got, exp)
    # the caller's arrays are left unchanged
    np.testing.assert_array_equal(sup_01[0],
                                  (np.asarray(Image.open(support_masks[0])) >
                                   0).astype(np.uint8))

    # a folder: its images sorted by name (supports and masks included)
    folder = tmp_path / 'queries'
    folder.mkdir()
    for i, p in enumerate(queries):
        Image.open(p).save(folder / f'q{i}.png')
    (folder / 'notes.txt').write_text('not an image')
    from_folder = inferencer(str(folder))
    assert from_folder['img_paths'] == [
        str(folder / f'q{i}.png') for i in range(len(queries))
    ]
    for got, exp in zip(from_folder['predictions'], expected):
        np.testing.assert_array_equal(got, exp)

    # a single path gives a single prediction
    single = inferencer(queries[1])
    np.testing.assert_array_equal(single['predictions'], expected[1])

    # data samples (the supports given last were arrays: no paths)
    samples = inferencer(queries[:2], return_datasamples=True)['predictions']
    assert samples[0].support_img_paths == [None, None]
    samples = inferencer(
        queries[:2], support_imgs=support_imgs[:2],
        support_masks=support_masks[:2],
        return_datasamples=True)['predictions']
    assert samples[0].pred_sem_seg.data.shape == (1, 37, 53)
    assert samples[0].seg_logits.data.shape == (2, 37, 53)
    assert samples[0].ori_shape == (37, 53)
    assert samples[0].img_path == queries[0]
    assert samples[0].support_img_paths == support_imgs[:2]
    np.testing.assert_array_equal(
        samples[1].pred_sem_seg.data[0].numpy(), expected[1])
    np.testing.assert_allclose(
        samples[1].fg_prob.data[0].numpy(),
        samples[1].seg_logits.data.softmax(0)[1].numpy(),
        atol=1e-6)


# ----------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------
def test_support_without_mask(inferencer, episode_dir):
    _, support_imgs, support_masks, queries = episode_dir
    with pytest.raises(ValueError, match='support1.png.*no mask'):
        inferencer(queries[0], support_imgs=support_imgs[:2],
                   support_masks=support_masks[:1])
    with pytest.raises(ValueError, match='support1_mask.png.*no support'):
        inferencer(queries[0], support_imgs=support_imgs[:1],
                   support_masks=support_masks[:2])
    with pytest.raises(ValueError, match='K >= 1'):
        inferencer(queries[0], support_imgs=[], support_masks=[])
    with pytest.raises(ValueError, match='both support_imgs'):
        inferencer(queries[0], support_imgs=support_imgs[:1])


def test_support_mask_of_another_size(inferencer, episode_dir, tmp_path):
    _, support_imgs, _, queries = episode_dir
    bad_mask = str(tmp_path / 'small_mask.png')
    Image.fromarray(make_mask(20, 20)).save(bad_mask)
    with pytest.raises(ValueError,
                       match=r'small_mask.png.*20x20.*support0.png.*40x56'):
        inferencer(queries[0], support_imgs=support_imgs[:1],
                   support_masks=[bad_mask])


def test_unreadable_files(inferencer, episode_dir, tmp_path, log_capture):
    _, support_imgs, support_masks, queries = episode_dir
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'this is not a JPEG')
    with pytest.raises(ValueError, match='broken.jpg'):
        inferencer(queries[0], support_imgs=[str(broken)],
                   support_masks=support_masks[:1])
    with pytest.raises(ValueError, match='broken.jpg'):
        inferencer(queries[0], support_imgs=support_imgs[:1],
                   support_masks=[str(broken)])
    with pytest.raises(FileNotFoundError, match='missing.png'):
        inferencer(queries[0], support_imgs=[str(tmp_path / 'missing.png')],
                   support_masks=support_masks[:1])

    # a broken query is reported and skipped, the others are processed
    out = str(tmp_path / 'out')
    result = inferencer(
        [queries[0], str(broken), queries[1]],
        support_imgs=support_imgs[:1],
        support_masks=support_masks[:1],
        batch_size=2,
        out_dir=out)
    assert result['failed'] == [str(broken)]
    assert result['predictions'][1] is None
    assert result['predictions'][0].shape == (37, 53)
    assert result['predictions'][2].shape == (48, 96)
    assert any('broken.jpg' in m for m in log_capture.messages(logging.ERROR))
    assert osp.isfile(osp.join(out, 'pred', 'query1.png.png'))
    assert not osp.exists(osp.join(out, 'pred', 'broken.jpg.png'))


def test_bad_queries(inferencer, episode_dir, tmp_path):
    _, support_imgs, support_masks, queries = episode_dir
    inferencer.set_supports(support_imgs[:1], support_masks[:1])
    empty_dir = tmp_path / 'empty'
    empty_dir.mkdir()
    (empty_dir / 'readme.txt').write_text('no images here')
    with pytest.raises(ValueError, match='empty.*holds no image'):
        inferencer(str(empty_dir))
    with pytest.raises(FileNotFoundError, match='nowhere.jpg'):
        inferencer([queries[0], str(tmp_path / 'nowhere.jpg')])
    with pytest.raises(ValueError, match='uint8'):
        inferencer(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match='batch_size'):
        inferencer(queries[0], batch_size=0)


def test_no_support_set(tiny_model, episode_dir):
    fresh = FewShotInferencer(tiny_model, img_size=NET_SIZE)
    with pytest.raises(ValueError, match='No support set'):
        fresh(episode_dir[3][0])
