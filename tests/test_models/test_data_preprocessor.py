"""FewShotDataPreProcessor: normalisation of queries and supports."""
import pytest
import torch
from mmengine.model import ImgDataPreprocessor
from mmseg.structures import SegDataSample

from dcama_mm.models import FewShotDataPreProcessor

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def _batch(batch=2, shots=3, size=(8, 12), seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, *size), generator=gen,
                                    dtype=torch.uint8))
        sample = SegDataSample()
        sample.support_imgs = torch.randint(
            0, 256, (shots, 3, *size), generator=gen, dtype=torch.uint8)
        sample.support_masks = torch.ones(shots, *size)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _expected(bgr_uint8):
    rgb = bgr_uint8.float().flip(-3)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return (rgb - mean) / std


def test_normalises_queries_and_supports_alike(device):
    """... and moves the CPU batch (queries, supports, masks) to the
    preprocessor's device (the model's)."""
    processor = FewShotDataPreProcessor(mean=MEAN, std=STD,
                                        bgr_to_rgb=True).to(device)
    data = _batch()
    originals = [s.support_imgs.clone() for s in data['data_samples']]
    out = processor(data)
    assert out['inputs'].shape == (2, 3, 8, 12)
    assert out['inputs'].dtype == torch.float32
    assert out['inputs'].device.type == device.type
    for b in range(2):
        torch.testing.assert_close(out['inputs'][b].cpu(),
                                   _expected(data['inputs'][b]))
        sample = out['data_samples'][b]
        assert sample.support_imgs.dtype == torch.float32
        assert sample.support_imgs.device.type == device.type
        assert sample.support_masks.device.type == device.type
        torch.testing.assert_close(sample.support_imgs.cpu(),
                                   _expected(originals[b]))
        assert sample.batch_input_shape == (8, 12)
        # the caller's samples are untouched
        assert torch.equal(data['data_samples'][b].support_imgs,
                           originals[b])
    # a pixel by hand: B=10, G=20, R=30 -> ((30-123.675)/58.395, ...)
    pixel = torch.tensor([10, 20, 30], dtype=torch.uint8).view(3, 1, 1)
    out = processor(dict(inputs=[pixel], data_samples=None))
    torch.testing.assert_close(
        out['inputs'].flatten().cpu(),
        torch.tensor([(30 - MEAN[0]) / STD[0], (20 - MEAN[1]) / STD[1],
                      (10 - MEAN[2]) / STD[2]]))


def test_stacked_tensor_input_and_no_normalisation():
    processor = FewShotDataPreProcessor()
    imgs = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    out = processor(dict(inputs=imgs))
    torch.testing.assert_close(out['inputs'], imgs.float())


def test_rejects_mixed_batches():
    processor = FewShotDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=True)
    data = _batch()
    data['data_samples'][1].support_imgs = data['data_samples'][1]\
        .support_imgs[:2]
    with pytest.raises(ValueError, match='same number of shots'):
        processor(data)
    data = _batch()
    data['inputs'][1] = data['inputs'][1][:, :4]
    with pytest.raises(ValueError, match='different shapes'):
        processor(data)
    data = _batch()
    for sample in data['data_samples']:
        sample.support_imgs = sample.support_imgs[..., :4]
    with pytest.raises(ValueError, match='same network size'):
        processor(data)


def test_bad_arguments():
    with pytest.raises(ValueError, match='together'):
        FewShotDataPreProcessor(mean=MEAN)
    with pytest.raises(ValueError, match='3 values'):
        FewShotDataPreProcessor(mean=[1, 2], std=[1, 2])
    with pytest.raises(ValueError, match='cannot both'):
        FewShotDataPreProcessor(bgr_to_rgb=True, rgb_to_bgr=True)


@pytest.mark.parametrize('dtype', [torch.uint8, torch.float32])
def test_bit_identical_to_hand_written_normalisation(dtype):
    processor = FewShotDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=True)
    assert isinstance(processor, ImgDataPreprocessor)
    data = _batch(batch=3, shots=2, size=(7, 9), seed=1)
    data['inputs'] = [img.to(dtype) for img in data['inputs']]
    mean = torch.tensor(MEAN).view(-1, 1, 1)
    std = torch.tensor(STD).view(-1, 1, 1)
    expected_supports = [(s.support_imgs.float().flip(-3) - mean) / std
                         for s in data['data_samples']]
    out = processor(data)
    expected = (torch.stack(data['inputs']).float().flip(-3) - mean) / std
    assert torch.equal(out['inputs'], expected)
    for sample, supports in zip(out['data_samples'], expected_supports):
        assert torch.equal(sample.support_imgs, supports)
    # normalize() on any leading dimensions, as the inferencer calls it
    imgs = torch.randint(0, 256, (2, 2, 3, 5, 4), dtype=torch.uint8)
    assert torch.equal(processor.normalize(imgs),
                       (imgs.float().flip(-3) - mean) / std)
    assert torch.equal(processor.normalize(imgs[0, 0]),
                       (imgs[0, 0].float().flip(-3) - mean) / std)
    with pytest.raises(ValueError, match=r'\[\.\.\., 3, H, W\]'):
        processor.normalize(torch.zeros(2, 4, 5, 5))


def test_no_channel_flip_and_rgb_to_bgr():
    imgs = torch.randint(0, 256, (2, 3, 4, 6), dtype=torch.uint8)
    mean = torch.tensor(MEAN).view(-1, 1, 1)
    std = torch.tensor(STD).view(-1, 1, 1)
    plain = FewShotDataPreProcessor(mean=MEAN, std=STD)
    assert torch.equal(plain(dict(inputs=imgs))['inputs'],
                       (imgs.float() - mean) / std)
    flip = FewShotDataPreProcessor(mean=MEAN, std=STD, rgb_to_bgr=True)
    assert torch.equal(flip(dict(inputs=imgs))['inputs'],
                       (imgs.float().flip(-3) - mean) / std)
