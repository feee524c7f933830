"""FewShotInferencer's result files: masks and overlays named after the
queries, and no existing result overwritten without force."""
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from tests.test_apis.inferencer_helpers import write_image


def test_writes_masks_and_overlays_and_refuses_to_overwrite(
        inferencer, episode_dir, tmp_path):
    _, support_imgs, support_masks, queries = episode_dir
    out = str(tmp_path / 'out')
    result = inferencer(
        queries[:2],
        support_imgs=support_imgs[:2],
        support_masks=support_masks[:2],
        out_dir=out,
        return_vis=True)
    for query, mask, vis in zip(queries[:2], result['predictions'],
                                result['visualization']):
        name = osp.basename(query)  # results: <file name>.png / .jpg
        saved = np.asarray(Image.open(osp.join(out, 'pred', name + '.png')))
        np.testing.assert_array_equal(saved, mask * 255)
        overlay = np.asarray(Image.open(osp.join(out, 'vis', name + '.jpg')))
        h, w = mask.shape
        # the query at full size with the supports in a panel on the right
        assert overlay.shape[0] == h and overlay.shape[1] > w
        assert vis.shape == overlay.shape
        query_bgr = np.asarray(Image.open(query))[..., ::-1]
        fg = mask.astype(bool)
        # the background of the query is untouched, the foreground tinted
        np.testing.assert_array_equal(vis[:, :w][~fg], query_bgr[~fg])
        assert np.abs(vis[:, :w][fg].astype(int) -
                      query_bgr[fg].astype(int)).mean() > 10

    pred_file = osp.join(out, 'pred', 'query0.png.png')
    before = osp.getmtime(pred_file)
    with pytest.raises(FileExistsError, match='query0.png.png'):
        inferencer(queries[:2], out_dir=out)
    assert osp.getmtime(pred_file) == before
    # a new query into the same folder is fine, and force overwrites
    inferencer(queries[2:3], out_dir=out)
    assert osp.isfile(osp.join(out, 'pred', 'query2.png.png'))
    inferencer(queries[:2], out_dir=out, force=True)

    # two queries with the same file name (two folders) are refused before
    # any work, naming both
    twin_dir = tmp_path / 'twin'
    twin_dir.mkdir()
    twin = write_image(
        str(twin_dir / 'query0.png'),
        np.asarray(Image.open(queries[1]))[..., ::-1])
    out2 = str(tmp_path / 'out2')
    with pytest.raises(ValueError,
                       match=r"query0.png' and .*twin/query0.png'.*same file"):
        inferencer([queries[0], twin], out_dir=out2, img_out_dir='')
    assert not osp.exists(out2)


def test_the_overwrite_refusal_comes_before_the_supports(
        inferencer, episode_dir, tmp_path):
    """A call whose result files exist is refused before its supports are
    read or encoded: even supports that would be refused (an empty mask;
    an empty class of support_sets) give the overwrite refusal, and valid
    new supports do not replace the stored ones."""
    _, support_imgs, support_masks, queries = episode_dir
    out = str(tmp_path / 'out')
    inferencer(queries[:1], support_imgs=support_imgs[:1],
               support_masks=support_masks[:1], out_dir=out)
    assert inferencer.num_shots == 1
    empty = str(tmp_path / 'empty_mask.png')
    Image.fromarray(np.zeros((40, 56), np.uint8)).save(empty)  # support0's
    with pytest.raises(ValueError, match='empty_mask.png'):
        inferencer(queries[:1], support_imgs=support_imgs[:1],
                   support_masks=[empty])  # it is refused on its own
    with pytest.raises(FileExistsError, match='query0.png.png'):
        inferencer(queries[:1], support_imgs=support_imgs[:1],
                   support_masks=[empty], out_dir=out)
    with pytest.raises(FileExistsError, match='query0.png.png'):
        inferencer(queries[:1], support_sets={
            'a': (support_imgs[:1], support_masks[:1]),
            'b': (support_imgs[:1], [empty])}, out_dir=out)
    inferencer.set_supports(support_imgs[:1], support_masks[:1])
    with pytest.raises(FileExistsError, match='query0.png.png'):
        inferencer(queries[:1], support_imgs=support_imgs[:3],
                   support_masks=support_masks[:3], out_dir=out)
    assert inferencer.num_shots == 1 and inferencer.classes == []
