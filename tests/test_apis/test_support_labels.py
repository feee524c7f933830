"""Support masks that are not binary: label masks (labels {0, 1, 2}, PASCAL
VOC palette PNGs), the label option of the API and of tools/infer.py, and
the refusal of empty supports."""
import logging
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from dcama_mm.apis import FewShotInferencer
from dcama_mm.datasets.transforms.binary_mask import to_binary_mask
from tests.test_apis.inferencer_helpers import (NET_SIZE, build_tiny_model,
                                                make_image, make_mask,
                                                write_image)
from tests.test_tools.test_infer import load_tool

H, W = 40, 56
#: VOC's palette for the indices used here (0 black, 12 dog, 15 person,
#: 255 boundary).
VOC_COLOURS = {0: (0, 0, 0), 12: (64, 0, 128), 15: (192, 128, 128),
               255: (224, 224, 192)}


def regions() -> dict:
    """Two objects and a boundary line around the first."""
    a = make_mask(H, W, 1).astype(bool)
    b = np.zeros((H, W), bool)
    b[2:8, 2:12] = True
    boundary = np.zeros((H, W), bool)
    boundary[H // 4 - 1, :] = True
    return dict(a=a & ~boundary, b=b, boundary=boundary)


def save_palette(path: str, indices: np.ndarray) -> str:
    picture = Image.fromarray(indices.astype(np.uint8), mode='P')
    flat = []
    for i in range(256):
        flat += VOC_COLOURS.get(i, (i, i, i))
    picture.putpalette(flat)
    picture.save(path)
    assert Image.open(path).mode == 'P'
    return path


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('labels')
    r = regions()
    rng = np.random.default_rng(3)
    out = dict(img=write_image(str(root / 'support.png'),
                               make_image(rng, H, W)),
               query=write_image(str(root / 'query.png'),
                                 make_image(rng, 37, 53)))
    labels012 = np.zeros((H, W), np.uint8)
    labels012[r['a']], labels012[r['b']] = 1, 2
    out['labels012'] = str(root / 'labels012.png')
    Image.fromarray(labels012).save(out['labels012'])
    voc1 = np.zeros((H, W), np.uint8)
    voc1[r['a']], voc1[r['boundary']] = 15, 255
    out['voc_person'] = save_palette(str(root / 'voc_person.png'), voc1)
    voc2 = voc1.copy()
    voc2[r['b']] = 12
    out['voc_two'] = save_palette(str(root / 'voc_two.png'), voc2)
    for name, region in (('binary_a', r['a']), ('binary_b', r['b'])):
        out[name] = str(root / f'{name}.png')
        Image.fromarray(region.astype(np.uint8) * 255).save(out[name])
    out['empty'] = str(root / 'empty.png')
    Image.fromarray(np.zeros((H, W), np.uint8)).save(out['empty'])
    out['dim16'] = str(root / 'dim16.png')
    dim16 = r['a'].astype(np.uint16) * 1000
    dim16[r['boundary']] = 500
    Image.fromarray(dim16).save(out['dim16'])
    out['instances16'] = str(root / 'instances16.png')
    instances = np.zeros((H, W), np.uint16)
    instances[r['a']], instances[r['b']] = 300, 301
    Image.fromarray(instances).save(out['instances16'])
    assert Image.open(out['instances16']).mode == 'I;16'
    return out


@pytest.fixture(scope='module')
def inferencer():
    return FewShotInferencer(build_tiny_model(), device='cpu',
                             img_size=NET_SIZE)


def predict(inferencer, files, mask, **kwargs):
    return inferencer(files['query'], support_imgs=[files['img']],
                      support_masks=[mask], return_probs=True,
                      **kwargs)['predictions']


# ----------------------------------------------------------------------
# the rule
# ----------------------------------------------------------------------
def test_the_rule_on_arrays():
    r = regions()
    labels = np.zeros((H, W), np.uint8)
    labels[r['a']], labels[r['b']] = 1, 2
    with pytest.raises(ValueError, match=r"mask 'm.png' is a label mask with "
                       r'the values 0, 1, 2.*support_labels=.*'
                       r'--support-label'):
        to_binary_mask(labels, "mask 'm.png'")
    np.testing.assert_array_equal(to_binary_mask(labels, 'm', label=2),
                                  r['b'])
    with pytest.raises(ValueError, match='no pixel of label 7; values '
                       'found: 0, 1, 2'):
        to_binary_mask(labels, 'm', label=7)
    # a mask with a single non-zero value: that value is the object
    for value in (1, 15, 255):
        np.testing.assert_array_equal(
            to_binary_mask(r['a'].astype(np.uint8) * value, 'm'), r['a'])
    # soft 0..255 masks keep the >= 128 cut
    soft = np.where(r['a'], 200, 0).astype(np.uint8)
    soft[r['boundary']] = 100
    soft[r['b']] = 130
    np.testing.assert_array_equal(to_binary_mask(soft, 'm'),
                                  r['a'] | r['b'])
    # 0/label/255 in a grey PNG is ambiguous; in a palette PNG it is VOC's
    voc = np.where(r['a'], 15, 0).astype(np.uint8)
    voc[r['boundary']] = 255
    with pytest.raises(ValueError, match='values 0, 15, 255'):
        to_binary_mask(voc, 'm')
    np.testing.assert_array_equal(to_binary_mask(voc, 'm', palette=True),
                                  r['a'])
    with pytest.raises(ValueError, match='colour image; a label'):
        to_binary_mask(np.dstack([voc, voc * 0, voc]), 'm', label=15)


# ----------------------------------------------------------------------
# FewShotInferencer
# ----------------------------------------------------------------------
def test_a_label_mask_is_refused_naming_file_values_and_option(
        inferencer, files):
    with pytest.raises(ValueError,
                       match=r"labels012.png' is a label mask with the "
                       r'values 0, 1, 2.*support_labels='):
        predict(inferencer, files, files['labels012'])


def test_a_label_picks_the_object(inferencer, files):
    for label, binary in ((1, 'binary_a'), (2, 'binary_b')):
        picked = predict(inferencer, files, files['labels012'],
                         support_labels=label)
        expected = predict(inferencer, files, files[binary])
        np.testing.assert_array_equal(picked['fg_prob'], expected['fg_prob'])
    # one label per support
    two = inferencer(files['query'], support_imgs=[files['img']] * 2,
                     support_masks=[files['labels012'], files['binary_a']],
                     support_labels=[2, None], return_probs=True)
    same = inferencer(files['query'], support_imgs=[files['img']] * 2,
                      support_masks=[files['binary_b'], files['binary_a']],
                      return_probs=True)
    np.testing.assert_array_equal(two['predictions']['fg_prob'],
                                  same['predictions']['fg_prob'])
    with pytest.raises(ValueError, match='no pixel of label 9'):
        predict(inferencer, files, files['labels012'], support_labels=9)
    with pytest.raises(ValueError, match='2 entries for 1 support'):
        predict(inferencer, files, files['labels012'], support_labels=[1, 2])


def test_a_16_bit_instance_mask_names_its_labels(inferencer, files):
    """Instance ids {0, 300, 301} without a label: the message names the
    values and the label options (not only "no foreground pixel")."""
    with pytest.raises(ValueError) as info:
        predict(inferencer, files, files['instances16'])
    message = str(info.value)
    assert "instances16.png' has no foreground pixel (values found: 0, " \
        '300, 301)' in message
    assert 'label mask' in message and '300, 301' in message
    assert 'support_labels=<label>' in message
    assert '--support-label <label>' in message
    for label, binary in ((300, 'binary_a'), (301, 'binary_b')):
        picked = predict(inferencer, files, files['instances16'],
                         support_labels=label)
        expected = predict(inferencer, files, files[binary])
        np.testing.assert_array_equal(picked['fg_prob'], expected['fg_prob'])


def test_the_web_page_names_the_labels_of_an_instance_mask(files):
    from dcama_mm.apis.webui_inputs import read_mask_file
    with pytest.raises(ValueError, match=r"'instances16.png' has no "
                       r'foreground pixel \(values found: 0, 300, 301\)'
                       r".*label mask.*'Label in its mask files' box"):
        read_mask_file(files['instances16'], 'mask file of support 1', None)
    np.testing.assert_array_equal(
        read_mask_file(files['instances16'], 'mask file', 301),
        regions()['b'])


def test_empty_soft_masks_get_the_label_hint_only_with_labels():
    """The rule's own check of an empty result (require_object)."""
    r = regions()
    instances = np.zeros((H, W), np.uint16)
    instances[r['a']], instances[r['b']] = 300, 301
    with pytest.raises(ValueError, match=r"'i.png' has no foreground pixel "
                       r'\(values found: 0, 300, 301\).*32768.*label mask'
                       r'.*type it here'):
        to_binary_mask(instances, "mask 'i.png'", require_object=True,
                       label_options='type it here')
    # no label to give: the plain message
    with pytest.raises(ValueError) as info:
        to_binary_mask(np.zeros((H, W), np.uint8), 'm', require_object=True)
    assert 'values found: 0)' in str(info.value)
    assert 'label mask' not in str(info.value)
    with pytest.raises(ValueError) as info:
        to_binary_mask(np.full((H, W), 0.2, np.float32), 'm',
                       require_object=True)
    assert 'label mask' not in str(info.value)
    # without require_object the rule still gives the empty mask
    assert not to_binary_mask(instances, 'm').any()
    # a genuine soft 16-bit mask (probabilities 0..65535) keeps its cut
    soft = np.linspace(0, 65535, H * W).reshape(H, W).astype(np.uint16)
    np.testing.assert_array_equal(
        to_binary_mask(soft, 'm', require_object=True), soft >= 32768)


def test_voc_palette_pngs(inferencer, files):
    """One label besides 0 and 255: that label (255 = boundary, background);
    several: refused unless one is picked."""
    person = predict(inferencer, files, files['voc_person'])
    expected = predict(inferencer, files, files['binary_a'])
    np.testing.assert_array_equal(person['fg_prob'], expected['fg_prob'])
    with pytest.raises(ValueError, match=r"voc_two.png' is a palette "
                       r'\(indexed\) PNG with the values 0, 12, 15, 255'):
        predict(inferencer, files, files['voc_two'])
    dog = predict(inferencer, files, files['voc_two'], support_labels=12)
    np.testing.assert_array_equal(
        dog['fg_prob'], predict(inferencer, files, files['binary_b'])
        ['fg_prob'])
    # N-way from one VOC mask: (images, masks, labels) per class
    result = inferencer(
        files['query'], support_sets={
            'person': ([files['img']], [files['voc_two']], 15),
            'dog': ([files['img']], [files['voc_two']], 12)})
    reference = inferencer(
        files['query'], support_sets={
            'person': ([files['img']], [files['binary_a']]),
            'dog': ([files['img']], [files['binary_b']])})
    np.testing.assert_array_equal(result['predictions']['label_map'],
                                  reference['predictions']['label_map'])


def test_empty_supports_are_refused_naming_the_file(inferencer, files):
    for masks in ([files['empty']], [files['binary_a'], files['empty']]):
        with pytest.raises(ValueError, match=r"empty.png' has no foreground "
                           r'pixel \(values found: 0\)'):
            inferencer(files['query'], support_imgs=[files['img']] *
                       len(masks), support_masks=masks)
    # a soft 16-bit mask whose object is below the 16-bit cut
    with pytest.raises(ValueError, match=r"dim16.png' has no foreground "
                       r'pixel \(values found: 0, 500, 1000\)'):
        predict(inferencer, files, files['dim16'])
    # an object that vanishes at the network size
    speck = np.zeros((400, 560), np.uint8)
    speck[201, 283] = 255
    with pytest.raises(ValueError, match=r'support mask #0.*too small.*'
                       r'network size \(64, 64\)'):
        inferencer(files['query'],
                   support_imgs=[np.zeros((400, 560, 3), np.uint8)],
                   support_masks=[speck])


# ----------------------------------------------------------------------
# tools/infer.py
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def cli(tmp_path_factory):
    import torch
    root = tmp_path_factory.mktemp('labels_cli')
    from tests.test_apis.inferencer_helpers import CONFIG_TEXT
    cfg = str(root / 'tiny.py')
    with open(cfg, 'w') as f:
        f.write(CONFIG_TEXT)
    ckpt = str(root / 'tiny.pth')
    torch.save(dict(state_dict=build_tiny_model().state_dict(), meta={}),
               ckpt)
    return load_tool('tools/infer.py'), cfg, ckpt, root


def test_cli_support_label(cli, files, inferencer, log_capture):
    tool, cfg, ckpt, root = cli

    def args(out, *extra):
        return [cfg, ckpt, '--support', f"{files['img']}:{files['labels012']}",
                '--query', files['query'], '--out', str(root / out),
                '--img-size', str(NET_SIZE), '--device', 'cpu', *extra]

    assert tool.main(args('none')) == 2
    errors = log_capture.messages(logging.ERROR)
    assert any('labels012.png' in m and 'values 0, 1, 2' in m
               and '--support-label' in m for m in errors)
    assert not osp.exists(root / 'none' / 'pred')
    assert tool.main(args('two', '--support-label', '2')) == 0
    saved = np.asarray(Image.open(root / 'two' / 'pred' / 'query.png.png'))
    expected = predict(inferencer, files, files['binary_b'])['sem_seg']
    np.testing.assert_array_equal(saved, expected * 255)
    instances = args('inst')
    instances[3] = f"{files['img']}:{files['instances16']}"
    assert tool.main(instances) == 2
    assert any('instances16.png' in m and 'values found: 0, 300, 301' in m
               and '--support-label <label>' in m
               for m in log_capture.messages(logging.ERROR))
    instances = args('inst300', '--support-label', '300')
    instances[3] = f"{files['img']}:{files['instances16']}"
    assert tool.main(instances) == 0
    saved = np.asarray(Image.open(root / 'inst300' / 'pred' /
                                  'query.png.png'))
    expected = predict(inferencer, files, files['binary_a'])['sem_seg']
    np.testing.assert_array_equal(saved, expected * 255)
    assert tool.main(args('bad', '--support-label', '1', '--support-label',
                          '2')) == 2
    assert any('--support-label was given 2 times for 1 --support' in m
               for m in log_capture.messages(logging.ERROR))
    groups = tool.parse_supports(['a:x.jpg:x.png', 'b:y.jpg:y.png',
                                  'a:z.jpg:z.png'], [1, 2, 3])
    assert groups == {'a': [('x.jpg', 'x.png', 1), ('z.jpg', 'z.png', 3)],
                      'b': [('y.jpg', 'y.png', 2)]}
