"""On-the-fly waveform augmentation in the training loader: the hook, replay and resume."""

from __future__ import annotations

import pytest
import torch
import yaml
from _training_helpers import interrupt_then_resume, tiny_overrides

from vocalis.training import load_config, train
from vocalis.training.data import EpochBatchSampler, FeatureDataset, WaveformDataset, make_loader
from vocalis.training.distributed import DistInfo
from vocalis.training.prepared import prepare_data
from vocalis.training.runfolder import RunFolder

#: Every waveform transform and file mixup on, with crops, SpecAugment and dropout.
ALL_ON = (
    "augment=waveform_default",
    "augment.speed.p=0.5",
    "augment.pitch.p=0.5",
    "augment.stretch.p=0.5",
    "augment.file_mixup.p=0.5",
    "augment.spec_noise.p=0.5",
    "train.crop_seconds=0.3",
    "model.params.conv_dropout=0.3",
)


def _cfg(manifest, *extra, epochs=2):
    return load_config(None, [*tiny_overrides(manifest, epochs), *extra])


def _prepare(cfg):
    return prepare_data(cfg, None, (None, None, [0, 1, 2]), DistInfo(), RunFolder(None), False)


def _max_diff(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa)


def test_only_the_training_split_is_augmented(corpus):
    plain = _prepare(_cfg(corpus, "augment=none"))
    aug = _prepare(_cfg(corpus, *ALL_ON))
    assert isinstance(aug.train, WaveformDataset) and isinstance(plain.train, FeatureDataset)
    for part in ("val", "test"):  # cached, un-augmented features, identical to a plain run
        a, b = getattr(aug, part), getattr(plain, part)
        assert isinstance(a, FeatureDataset)
        assert all(torch.equal(x, y) for x, y in zip(a.features, b.features, strict=True))


def test_an_identity_chain_trains_exactly_like_cached_features(corpus, tmp_path):
    # gain of 0 dB on every utterance: the on-the-fly path (tier-0 audio, features per
    # step, normalisation) must give the cached path's batches, so the same weights
    plain = train(_cfg(corpus, "augment=none"), tmp_path / "plain", progress=False)
    ident = _cfg(
        corpus,
        "augment=none",
        "augment.gain.p=1",
        "augment.gain.min_gain_db=0",
        "augment.gain.max_gain_db=0",
    )
    assert ident.augment.waveform_active
    fly = train(ident, tmp_path / "fly", progress=False)
    assert _max_diff(plain.model, fly.model) == 0.0
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in fly.history]


def test_augmentation_changes_training_and_the_chain_is_recorded(corpus, tmp_path):
    plain = train(_cfg(corpus, "augment=none", epochs=1), tmp_path / "plain", progress=False)
    run = tmp_path / "aug"
    aug = train(_cfg(corpus, *ALL_ON, epochs=1), run, progress=False)
    assert _max_diff(plain.model, aug.model) > 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["augment"]["speed"]["p"] == 0.5 and saved["augment"]["noise"]["p"] == 0.5
    assert "train" in saved and "augment" not in saved["train"]
    log = (run / "log.txt").read_text()
    assert "Augmentation (training only; waveforms in the loader" in log
    assert "speed(p=0.5, min_rate=0.9, max_rate=1.1)" in log


def test_loader_workers_do_not_change_the_augmented_batches(corpus):
    data = _prepare(_cfg(corpus, *ALL_ON))
    sampler = EpochBatchSampler(
        [data.train.num_frames(i) for i in range(len(data.train))],
        4,
        seed=3,
        crop=True,
        augment=True,
    )
    sampler.set_epoch(1)

    def batches(workers):
        loader = make_loader(data.train, sampler, num_workers=workers)
        return [(b.features, b.lengths, None if b.mix is None else b.mix.lam) for b in loader]

    one, two = batches(0), batches(2)
    assert len(one) == len(two) == len(sampler)
    for (fa, la, ma), (fb, lb, mb) in zip(one, two, strict=True):
        assert torch.equal(fa, fb) and torch.equal(la, lb) and ma == mb
    sampler.set_epoch(2)  # another epoch: other draws
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(one, batches(0), strict=False))


@pytest.mark.parametrize("stop_after_steps", [4], ids=["mid-epoch"])
def test_kill_and_resume_is_bit_identical_with_augmentation(
    corpus, tmp_path, monkeypatch, stop_after_steps
):
    # 12 training utterances, batch 4: 3 steps per epoch; stop in the middle of epoch 2
    cfg = _cfg(corpus, *ALL_ON, epochs=3)
    full = train(cfg, tmp_path / "full", progress=False)
    resumed = interrupt_then_resume(cfg, tmp_path / "cut", monkeypatch, stop_after_steps)
    assert "Resumed from" in (tmp_path / "cut" / "log.txt").read_text()
    assert _max_diff(full.model, resumed.model) == 0.0
    assert [h["train_loss"] for h in full.history] == [h["train_loss"] for h in resumed.history]


def test_spec_masks_are_left_out_on_waveform_features_and_the_log_says_so():
    from vocalis.training.components import feature_augmenters, skipped_augmentations

    cfg = load_config(None, ["features=waveform", "model=ssl"])  # augment=default: masks on
    assert cfg.augment.spec_mask.p == 1.0
    specaug, _, _ = feature_augmenters(cfg)
    assert specaug is None  # a frequency mask of the one "bin" would zero the waveform
    assert "augment.spec_mask left out: features=waveform" in skipped_augmentations(cfg)[0]
    mfcc = load_config(None, [])
    assert feature_augmenters(mfcc)[0] is not None and not skipped_augmentations(mfcc)
