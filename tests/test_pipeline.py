"""FaceMarker, the one inference path: Face records, photos decoded once per resolution,
the same faces alone or in a batch, the detector registry, user-supplied boxes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facemark
from facemark import transforms
from facemark.detectors import DetectorConfig
from facemark.detectors.boxes import BoxesDetector
from facemark.detectors.facemark import FacemarkDetector
from facemark.detectors.yunet import YuNetDetector
from facemark.errors import DataError, UsageError
from facemark.hub import load_detector
from facemark.images import Photo
from facemark.pipeline import Face, FaceMarker
from facemark.pose import head_pose
from facemark.shape import MEAN_SHAPE

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
needs_photos = pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/photos not present")


def _checker(size=(2000, 1500)) -> Image.Image:
    """A big JPEG-able picture with a red square whose position is known exactly."""
    img = Image.new("RGB", size, (40, 90, 140))
    img.paste((255, 0, 0), (1200, 300, 1600, 700))  # x 1200..1599, y 300..699
    return img


def test_face_to_dict_is_the_jsonl_record() -> None:
    face = Face(
        np.array([1.234, 2.345, 30.0, 40.0]), 0.98765, np.full((68, 2), 5.5555), np.full(68, 0.5)
    )
    record = face.to_dict()
    assert list(record) == ["box", "score", "keypoints", "confidence", "low_confidence"]
    assert record["low_confidence"] is True and face.low_confidence  # 0.5 < LOW_CONFIDENCE
    assert record["box"] == [1.23, 2.35, 30.0, 40.0] and record["score"] == 0.9877
    assert np.array(record["keypoints"]).shape == (68, 2) and record["keypoints"][0] == [5.56, 5.56]
    json.dumps(record)  # plain Python types only
    pose = head_pose(MEAN_SHAPE * 100 + 320, (640, 480))
    posed = dataclasses.replace(face, pose=pose).to_dict()
    assert list(posed) == ["box", "score", "keypoints", "confidence", "low_confidence", "pose"]
    assert posed["pose"] == pose.to_dict()
    assert list(posed["pose"]) == ["yaw", "pitch", "roll", "rvec", "tvec"]
    json.dumps(posed, allow_nan=False)


def test_photo_reduced_view_maps_back_to_full_pixels(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    _checker().save(path, quality=95)
    photo = Photo.open(path)
    view, M = photo.view(900)
    assert photo.size == (2000, 1500) and view.size == (1000, 750)  # reduced to 1/2
    red = np.all(np.abs(np.asarray(view).astype(int) - (255, 0, 0)) < 60, axis=2)
    ys, xs = np.nonzero(red)
    back = transforms.apply_affine(
        np.array([[xs.min(), ys.min()], [xs.max(), ys.max()]], float), transforms.invert_affine(M)
    )
    np.testing.assert_allclose(back, [[1200, 300], [1599, 699]], atol=2.5)
    assert photo.array().shape == (1500, 2000, 3)
    assert photo.view(900)[0] is view  # each view is made once
    assert Photo.open(path).view(0)[0].size == (2000, 1500)


def test_landmarks_from_a_reduced_view_match_full_resolution(
    tmp_path: Path, tiny_landmark_checkpoint: Path
) -> None:
    """A big face is cropped from the coarse view: the points barely move."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(pixels).resize((400, 300)).resize((1600, 1200)))
    marker = FaceMarker(None, tiny_landmark_checkpoint)
    box = np.array([[300.0, 200, 1100, 1000]])  # crop side 1000 px: fine from a 1/4 view
    full = marker.landmarks([Photo.from_image(pixels)], [box])[0][0]
    path = tmp_path / "big.png"
    Image.fromarray(pixels).save(path)
    photo = Photo.from_image(pixels)
    photo.view(400)  # make the 1/4 view, which the crop should now use
    reduced = marker.landmarks([photo], [box])[0][0]
    assert np.abs(full - reduced).max() < 4.0  # < 0.5 % of the 800 px face


def test_no_face_is_an_empty_list_and_api_is_exported() -> None:
    marker = facemark.FaceMarker()
    assert isinstance(marker.detector, YuNetDetector)
    assert marker(np.full((240, 320, 3), 127, np.uint8)) == []
    assert marker.batch([]) == []
    assert facemark.Face is Face and facemark.load_detector is load_detector


def test_detector_registry_names() -> None:
    assert isinstance(load_detector("facemark"), FacemarkDetector)
    assert isinstance(load_detector("yunet_s"), YuNetDetector)
    assert load_detector("yunet_s").describe()["version"].startswith("yunet_s-")
    with pytest.raises(UsageError):
        load_detector("no-such-detector")
    with pytest.raises(UsageError, match="unknown detector option"):
        FaceMarker(threshhold=0.4)


@needs_photos
def test_same_faces_alone_or_in_a_batch_and_from_a_path() -> None:
    """A photo gives the same detections whatever else is in the batch (different sizes)."""
    marker = FaceMarker()
    paths = [PHOTOS / n for n in ("couple.jpg", "img11.jpg", "insightface_t1.jpg")]
    arrays = [facemark.load_image(p) for p in paths]
    batched = marker.batch(arrays)
    assert [len(f) for f in batched] == [2, 1, 6]
    for array, faces in zip(arrays, batched, strict=True):
        alone = marker(array)
        assert len(alone) == len(faces)
        for a, b in zip(alone, faces, strict=True):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            assert abs(a.score - b.score) < 1e-5
            np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-2)
            assert a.pose is not None and a.pose.valid and abs(a.pose.yaw - b.pose.yaw) < 0.1
            assert list(a.to_dict())[-1] == "pose"
    from_path = marker(paths[2])
    assert len(from_path) == 6


def test_boxes_detector_reads_json_and_csv(tmp_path: Path) -> None:
    image = np.zeros((100, 120, 3), np.uint8)
    (tmp_path / "b.json").write_text(
        json.dumps({"photos/a.jpg": [[10, 10, 60, 70, 0.9], [70, 20, 110, 80]]})
    )
    (tmp_path / "b.csv").write_text("image,x0,y0,x1,y1,score\nsub/a.jpg,10,10,60,70,0.3\n")
    det = load_detector(f"boxes:{tmp_path / 'b.json'}")
    assert isinstance(det, BoxesDetector) and det.describe()["name"] == "boxes"
    found = det.detect(image, "photos/a.jpg")
    np.testing.assert_allclose(found.scores, [1.0, 0.9])  # best first
    assert len(det.detect(image, "elsewhere/a.jpg")) == 2  # matched by file name
    assert len(det.detect(image, "other.jpg")) == 0
    low = load_detector(tmp_path / "b.csv", config=DetectorConfig(threshold=0.5))
    assert len(low.detect(image, "a.jpg")) == 0  # below the threshold
    (tmp_path / "bad.json").write_text(json.dumps({"a.jpg": [[10, 10, 5, 70]]}))
    with pytest.raises(DataError, match="x1 <= x0"):
        load_detector(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="not found"):
        load_detector("boxes:missing.json")


def test_annotate_with_user_boxes_records_the_detector(
    tmp_path: Path, tiny_landmark_checkpoint: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (160, 120), (90, 90, 90)).save(folder / "a.png")
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.png": [[20, 10, 100, 110]]}))
    results = facemark.annotate(
        folder, detector=f"boxes:{boxes}", model=tiny_landmark_checkpoint, draw=False
    )
    records = [r.to_dict() for r in results]
    assert records[0]["detector"]["name"] == "boxes"
    assert records[0]["faces"][0]["box"] == [20.0, 10.0, 100.0, 110.0]


def test_import_sets_passive_openmp_unless_the_user_chose() -> None:
    code = "import os, facemark; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "ACTIVE"


@needs_photos
def test_a_big_photo_seen_reduced_finds_its_small_faces(tmp_path: Path) -> None:
    """The detector's passes and ``min_face`` follow the full-size photo, not the reduced
    view the pipeline gives the detector (a 12 MP photo reduced to 1/4)."""
    group = Image.open(PHOTOS / "insightface_t1.jpg").convert("RGB")  # 6 faces
    tile = group.resize((group.width // 3, group.height // 3))  # faces ~33-45 px wide
    canvas = Image.new("RGB", (4352, 2904), (90, 100, 110))
    for row in range(3):
        for col in range(3):
            canvas.paste(tile, (200 + col * 1300, 200 + row * 900))
    path = tmp_path / "crowd.jpg"
    canvas.save(path, quality=92)
    full = load_detector().detect(facemark.load_image(path))
    marker = FaceMarker(min_face=25)
    faces = marker(path)
    assert len(full) >= 40  # of 54; a single 640 px pass finds none of them
    assert len(faces) >= 30  # the landmark check drops some of the tiniest
    widths = [f.box[2] - f.box[0] for f in faces]
    assert min(widths) >= 25 and max(widths) < 80  # full-size pixels


def test_max_faces_counts_confirmed_faces_only(tiny_landmark_checkpoint: Path) -> None:
    """The landmark check runs before --max-faces: a rejected best detection does not take
    the place of a real face."""
    from facemark.detectors import Detections, Detector

    class TwoBoxes(Detector):
        name = "two"

        def detect_batch(self, images, names=None, sizes=None):
            boxes = np.array([[0, 0, 40, 40], [50, 10, 110, 80]], np.float32)
            found = Detections(boxes, np.array([0.9, 0.8], np.float32))
            return [found.finish(self.config) for _ in images]

    image = np.zeros((100, 120, 3), np.uint8)
    marker = FaceMarker(TwoBoxes(), tiny_landmark_checkpoint, max_faces=1, confirm=0.0)
    assert marker.max_faces == 1 and marker.detector.config.max_faces is None
    assert len(marker(image)) == 1
    faces, rejected, _ = marker.mark([image])
    assert rejected == [0] and len(faces[0]) == 1
    everything = FaceMarker(TwoBoxes(), tiny_landmark_checkpoint, confirm=0.0)
    assert len(everything(image)) == 2
    conf = [f.confidence.mean() for f in everything(image)]
    picky = FaceMarker(TwoBoxes(), tiny_landmark_checkpoint, max_faces=1, confirm=max(conf))
    (kept,) = picky(image)
    assert kept.confidence.mean() == pytest.approx(max(conf), abs=1e-6)
    # min_confidence: the same test (a mean that reaches it stays), counted apart from the
    # detector's rejects
    faces, rejected, dropped = marker.mark([image], min_confidence=max(conf))
    assert dropped == [sum(c < max(conf) for c in conf)] and len(faces[0]) == 1
    assert max(conf) < 0.99  # an untrained model: room above its confidence
    faces, rejected, dropped = everything.mark([image], min_confidence=max(conf) + 0.01)
    assert rejected == [0] and dropped == [2] and faces == [[]]
    assert marker.mark([image])[2] == [0]  # None: nothing dropped
    with pytest.raises(UsageError, match="--min-confidence"):
        marker.mark([image], min_confidence=1.5)


def test_low_confidence_flag_is_the_mean_below_the_threshold() -> None:
    from facemark.confidence import LOW_CONFIDENCE

    def face(confidence: np.ndarray) -> Face:
        return Face(np.array([0, 0, 10, 10.0]), 0.9, np.zeros((68, 2)), confidence)

    spread = np.linspace(-0.1, 0.1, 68)
    assert face(LOW_CONFIDENCE + 0.001 + spread).to_dict()["low_confidence"] is False
    assert face(LOW_CONFIDENCE - 0.001 + spread).to_dict()["low_confidence"] is True
    assert face(np.ones(68)).low_confidence is False


def test_faceness_head_rejects_and_records(tiny_landmark_checkpoint: Path, tmp_path: Path) -> None:
    """A landmark checkpoint with a faceness head scores every detection; one below
    DetectorConfig.faceness is counted as not a face, the others carry their score."""
    from facemark import checkpoint as ckpt
    from facemark.detectors import Detections, Detector
    from facemark.errors import CheckpointError
    from facemark.faceness import fit_head
    from facemark.landmarker import Landmarker

    class TwoBoxes(Detector):
        name = "two"

        def detect_batch(self, images, names=None, sizes=None):
            boxes = np.array([[0, 0, 40, 40], [50, 10, 110, 80]], np.float32)
            return [Detections(boxes, np.array([0.9, 0.8], np.float32)) for _ in images]

    image = np.zeros((100, 120, 3), np.uint8)
    image[10:80, 50:110] = 200  # the second box is bright, the first dark
    plain = Landmarker.from_checkpoint(tiny_landmark_checkpoint)
    crops = np.stack([plain.crops(Photo.from_image(image), b)[0][0] for b in
                      TwoBoxes().detect(image).boxes])  # fmt: skip
    feats = plain.model.forward_features(transforms.to_tensor(crops))[1].detach().numpy()
    # "human" = like the bright crop, "other" = like the dark one
    rng = np.random.default_rng(0)
    pos = feats[1] + rng.normal(0, 1e-3, (40, feats.shape[1]))
    neg = feats[0] + rng.normal(0, 1e-3, (40, feats.shape[1]))
    head = fit_head(pos, neg, epochs=60)
    data = ckpt.load_checkpoint(tiny_landmark_checkpoint)
    path = ckpt.save_checkpoint(tmp_path / "with-head.pt", {**data, "faceness": head.to_dict()})
    marker = FaceMarker(TwoBoxes(), path, confirm=0.0)
    faces, rejected, _ = marker.mark([image])
    assert rejected == [1] and len(faces[0]) == 1
    (face,) = faces[0]
    assert face.box[0] == 50 and face.faceness > 0.5 and face.to_dict()["faceness"] > 0.5
    assert list(face.to_dict())[-2:] == ["faceness", "pose"]
    off = FaceMarker(TwoBoxes(), path, confirm=0.0, faceness=0.0)
    assert off.mark([image])[1] == [0] and len(off(image)) == 2
    # a model without a head checks nothing and records no faceness
    bare = FaceMarker(TwoBoxes(), tiny_landmark_checkpoint, confirm=0.0)
    assert all(f.faceness is None and "faceness" not in f.to_dict() for f in bare(image))
    broken = {**data, "faceness": {**head.to_dict(), "std": [0.0]}}
    with pytest.raises(CheckpointError, match="faceness head is damaged"):
        Landmarker.from_checkpoint(broken)
    with pytest.raises(UsageError, match=r"--faceness \(faceness=\) must be between 0 and 1"):
        FaceMarker(TwoBoxes(), path, faceness=1.5)


def test_faceness_head_round_trips_and_reads_the_earlier_linear_form() -> None:
    """A head written by to_dict scores the same after from_dict; the logistic regression of
    earlier checkpoints (``weight``, ``bias``) reads as the same function."""
    from facemark.faceness import FacenessHead, fit_head

    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, (60, 12)), rng.normal(-1, 1, (60, 12))
    head = fit_head(pos, neg, members=3, hidden=4, epochs=300).with_threshold(0.3)
    again = FacenessHead.from_dict(head.to_dict())
    x = rng.normal(0, 2, (25, 12))
    np.testing.assert_allclose(again.score(x), head.score(x), atol=1e-5)
    assert again.threshold == 0.3 and head.w1.shape == (3, 12, 4)
    assert (head.score(pos) > 0.5).mean() > 0.9 and (head.score(neg) < 0.5).mean() > 0.9
    mean, std, w = rng.normal(0, 1, 12), rng.uniform(0.5, 2, 12), rng.normal(0, 1, 12)
    old = {"features": "heatmap-pool-v1", "mean": mean.tolist(), "std": std.tolist(),
           "weight": w.tolist(), "bias": -0.7, "threshold": 0.4}  # fmt: skip
    linear = 1 / (1 + np.exp(-(((x - mean) / std) @ w - 0.7)))
    np.testing.assert_allclose(FacenessHead.from_dict(old).score(x), linear, rtol=1e-5)


def test_bytes_file_objects_and_exif_rotated_pil_images_decode_like_paths(tmp_path: Path) -> None:
    """The same photo by path, bytes or file object gives the same pixels at every view; a
    Pillow image with an EXIF rotation is turned upright, as the file is."""
    import io

    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: a viewer turns it 90 degrees clockwise
    _checker((1600, 1200)).save(path, quality=90, exif=exif)
    by_path = Photo.open(path)
    by_bytes = Photo.open(path.read_bytes())
    with open(path, "rb") as fh:
        by_file = Photo.open(fh)
    with Image.open(path) as im:
        by_pil = Photo.from_image(im)
    upright = np.asarray(by_path.view(0)[0])
    by_array = Photo.from_image(upright)
    for photo in (by_bytes, by_file, by_pil, by_array):
        assert photo.size == by_path.size == (1200, 1600)
        for side in (500, 0):
            np.testing.assert_array_equal(np.asarray(photo.view(side)[0]),
                                          np.asarray(by_path.view(side)[0]))  # fmt: skip
    with Image.open(path) as im:
        assert Photo.from_image(im).size == (1200, 1600)
    with pytest.raises(DataError, match=r"cannot read <8 bytes>"):
        Photo.open(b"not jpeg")
    with pytest.raises(UsageError, match="binary mode"):
        Photo.open(io.StringIO("text"))


@needs_photos
def test_a_photo_by_path_bytes_or_file_object_gives_the_same_faces() -> None:
    marker = FaceMarker()
    path = PHOTOS / "couple.jpg"
    by_path = marker(path)
    with open(path, "rb") as fh:
        for faces in (marker(path.read_bytes()), marker(fh)):
            assert len(faces) == len(by_path) > 0
            for a, b in zip(faces, by_path, strict=True):
                np.testing.assert_array_equal(a.keypoints, b.keypoints)
