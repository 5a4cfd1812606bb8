"""Spatial control through the video engine: masks stream beside the frames, segmentation runs as a first pass.

In-process jobs on tiny clips with a narrow random VGG (plumbing): frame k of a mask is used for
input frame k of a range, a kept region is the input itself, segmentation masks do not depend on
how the range is cut into chunks, and the job key covers the mask's content.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from media_fixtures import make_clip

from vidstyle.engine.coordinator import JobSpec, run_job
from vidstyle.engine.settings import VideoSettings
from vidstyle.errors import ConfigError, InputError, WeightsError
from vidstyle.methods import MethodSpec
from vidstyle.methods.base import Regions
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.regions.settings import RegionSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_FRAMES = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("regions") / "input.mp4", n_frames=N_FRAMES, size=(64, 48))


def alternating_masks(folder: Path, count: int = N_FRAMES) -> Path:
    """Frame k's mask is white on the left half when k is even, on the right half when k is odd."""
    from vidstyle.media.images import save_image

    folder.mkdir()
    for k in range(count):
        mask = np.zeros((48, 64, 3), np.uint8)
        if k % 2 == 0:
            mask[:, :32] = 255
        else:
            mask[:, 32:] = 255
        save_image(str(folder / f"mask_{k}.png"), mask)
    return folder


def spec(regions: Regions | None) -> MethodSpec:
    rng = np.random.default_rng(3)
    style = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    settings = GatysSettings(
        size=64,
        iterations=8,
        later_iterations=8,
        weights="random",
        content_layers=("conv2_1",),
        style_layers=("conv1_1", "conv2_1"),
        check_every=3,
        tv_weight=0.0,
        early_stop=0.0,
        style_weight=1e5,  # random VGG features are small: a weight that makes the style visible in 8 steps
    ).validate()
    styles = [] if regions is not None and regions.keep_inside else [style]
    if regions is not None and regions.outside:
        regions = Regions(regions.keep_inside, [style[::-1].copy()], [1.0])
    return MethodSpec("gatys", settings, styles, regions=regions)


def job(clip: Path, regions: RegionSettings, method: MethodSpec, **overrides) -> JobSpec:
    fields = dict(
        input=str(clip),
        output=None,
        method=method,
        video=VideoSettings(chunk_frames=4, seam_frames=1),
        regions=regions,
        in_process=True,
        collect_frames=True,
        threads_per_worker=1,
    )
    fields.update(overrides)
    return JobSpec(**fields)


def test_mask_frame_k_is_used_for_input_frame_k_on_a_range(clip, tmp_path):
    masks = alternating_masks(tmp_path / "masks")
    regions = RegionSettings(mask=str(masks), background_style=("style.png",))
    report = run_job(job(clip, regions, spec(Regions(keep_inside=True, outside=["x"])), frames="3:7"))
    assert len(report.stylized) == 4
    for offset, (original, stylized) in enumerate(zip(report.originals, report.stylized)):
        k = 3 + offset
        kept, styled = (slice(0, 32), slice(32, 64)) if k % 2 == 0 else (slice(32, 64), slice(0, 32))
        diff = np.abs(original.astype(int) - stylized.astype(int))
        assert diff[:, kept].max() <= 1, k  # the kept (white) half is the input itself
        assert diff[:, styled].mean() > 3, k  # the other half is stylized


def test_the_job_key_covers_the_masks_content_not_its_path(clip, tmp_path):
    from vidstyle.engine.jobs import prepare_job
    from vidstyle.events import ignore

    first = alternating_masks(tmp_path / "a")
    copy = alternating_masks(tmp_path / "b")
    method = spec(Regions(keep_inside=True, outside=["x"]))

    def key(folder: Path, feather: float = 0.0) -> str:
        regions = RegionSettings(mask=str(folder), mask_feather=feather, background_style=("s.png",))
        prepared = prepare_job(job(clip, regions, method), ignore)
        prepared.temporary_work.cleanup()
        return prepared.key

    assert key(first) == key(copy)
    assert key(first, feather=2.0) != key(first)
    (copy / "mask_5.png").unlink()
    from vidstyle.media.images import save_image

    save_image(str(copy / "mask_5.png"), np.full((48, 64, 3), 128, np.uint8))
    assert key(copy) != key(first)


def test_bad_masks_fail_before_any_work(clip, tmp_path):
    method = spec(Regions(keep_inside=True, outside=["x"]))

    def run(mask: str, **kw) -> None:
        run_job(job(clip, RegionSettings(mask=mask, background_style=("s.png",)), method, **kw))

    with pytest.raises(InputError, match="does not exist"):
        run(str(tmp_path / "missing.png"))
    short = alternating_masks(tmp_path / "short", count=5)
    with pytest.raises(InputError, match="has 5 frames"):
        run(str(short), frames="2:8")
    from vidstyle.media.images import save_image

    save_image(str(tmp_path / "square.png"), np.zeros((40, 40, 3), np.uint8) + 255)
    with pytest.raises(ConfigError, match="aspect ratio"):
        run(str(tmp_path / "square.png"))
    save_image(str(tmp_path / "white.png"), np.full((48, 64, 3), 255, np.uint8))
    with pytest.raises(ConfigError, match="entirely white"):
        run(str(tmp_path / "white.png"))
    with pytest.raises(ConfigError, match="mask source"):
        run_job(job(clip, RegionSettings(), method))


@pytest.fixture(scope="module")
def segment_weights(tmp_path_factory) -> Path:
    """A generated state dict of the published layout (the real weights cannot be had here)."""
    import torch

    from vidstyle.features.segnet import LRASPPMobileNetV3

    torch.manual_seed(0)
    state = LRASPPMobileNetV3().state_dict()
    for name in ("classifier.low_classifier.weight", "classifier.high_classifier.weight"):
        state[name] = state[name] * 200  # sharp logits: masks that vary over pixels and frames, so chunking could show
    path = tmp_path_factory.mktemp("weights") / "lraspp.pth"
    torch.save(state, path)
    return path


def stored_masks(work: Path) -> np.ndarray:
    folder = work / "regions"
    return np.concatenate([np.load(p)["masks"] for p in sorted(folder.glob("*.npz"))])


def test_segmentation_masks_do_not_depend_on_chunking(clip, tmp_path, segment_weights):
    regions = RegionSettings(segment=("person",), segment_weights=str(segment_weights), background_style=("s",))
    method = spec(Regions(keep_inside=False, outside=[]))
    masks = []
    for chunk_frames in (4, 6):
        work = tmp_path / f"work{chunk_frames}"
        video = VideoSettings(chunk_frames=chunk_frames, seam_frames=1)
        report = run_job(job(clip, regions, method, video=video, work_dir=str(work), keep_work=True))
        assert len(report.stylized) == N_FRAMES
        masks.append(stored_masks(work))
    assert masks[0].shape == (N_FRAMES, 48, 64)
    assert masks[0].std() > 0 and np.ptp(masks[0].astype(int), axis=0).max() > 0  # varies over pixels and time
    assert np.array_equal(masks[0], masks[1])


def test_segmentation_without_weights_names_the_file(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    regions = RegionSettings(segment=("person",), background_style=("s",))
    with pytest.raises(WeightsError, match="lraspp_mobilenet_v3_large"):
        run_job(job(clip, regions, spec(Regions(keep_inside=False, outside=[]))))
    assert not any(tmp_path.iterdir()) or list(tmp_path.iterdir()) == [tmp_path / "torch"]


def test_resumed_segmentation_is_not_redone(clip, tmp_path, segment_weights, monkeypatch):
    regions = RegionSettings(segment=("person",), segment_weights=str(segment_weights), background_style=("s",))
    method = spec(Regions(keep_inside=False, outside=[]))
    work = tmp_path / "work"
    run_job(job(clip, regions, method, work_dir=str(work), keep_work=True))
    before = stored_masks(work)
    from vidstyle.engine.worker import Worker

    def refuse(*args, **kwargs):
        raise AssertionError("segmented again")

    monkeypatch.setattr(Worker, "segment", refuse)
    run_job(job(clip, regions, method, work_dir=str(work), keep_work=True))
    assert np.array_equal(before, stored_masks(work))
