"""Video input: decoding, tracking, smoothing, per-video JSONL/CSV, resume, bad files.

Clips are encoded with PyAV inside the tests (never downloaded).  Tests that need real
detections use a photo of the shared photo set beside the checkout and skip without it.
"""

from __future__ import annotations

import csv
import functools
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

av = pytest.importorskip("av")

from facemark import annotator as an  # noqa: E402
from facemark import video  # noqa: E402
from facemark.cli import app  # noqa: E402
from facemark.confidence import LOW_CONFIDENCE  # noqa: E402
from facemark.errors import DataError, UsageError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_video  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "photos"
#: An H.264 (or MPEG-4) clip of RGB frames (even sizes), at 10 frames/s here.
encode = functools.partial(bench_video.encode, fps=10)


def photo(name: str, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    path = PHOTOS / name
    if not path.is_file():
        pytest.skip(f"shared photo {path} not found")
    return np.asarray(Image.open(path).convert("RGB").resize(size))


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """img11.jpg at 320x240 as a 1 s clip at 10 fps (a little noise so frames differ)."""
    image = photo("img11.jpg")
    rng = np.random.default_rng(0)
    frames = [
        np.clip(image.astype(np.int16) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
        for _ in range(10)
    ]
    return encode(tmp_path_factory.mktemp("clip") / "clip.mp4", frames)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- outputs


def test_a_clip_gives_one_record_per_frame_with_a_steady_track(
    face_clip: Path, tmp_path: Path
) -> None:
    records: list[dict] = []
    summary = an.run(
        [face_clip],
        tmp_path / "out",
        an.AnnotateConfig(csv=True),
        on_record=lambda r: records.append(r.to_dict()),
    )
    assert summary.videos == 1 and summary.frames == 10 and summary.faces == 10
    assert set(summary.video_timing) >= {"fps", "decode", "detect", "landmarks", "write"}
    lines = read_jsonl(tmp_path / "out" / "clip.mp4.jsonl")
    assert lines == records
    assert [r["frame"] for r in lines] == list(range(10))
    assert [r["timestamp"] for r in lines] == pytest.approx([i / 10 for i in range(10)])
    first = lines[0]
    assert first["video"] == str(face_clip)
    assert (first["width"], first["height"]) == (320, 240)
    assert first["detector"]["name"]
    for r in lines:
        assert [f["track"] for f in r["faces"]] == [0]
        face = r["faces"][0]
        assert np.array(face["keypoints"]).shape == (68, 2)
        assert len(face["confidence"]) == 68 and len(face["box"]) == 4
        assert face["low_confidence"] is bool(np.mean(face["confidence"]) < LOW_CONFIDENCE)
    # the points stay on the face: little motion from frame to frame on a still clip
    kps = np.array([r["faces"][0]["keypoints"] for r in lines])
    assert np.abs(np.diff(kps, axis=0)).max() < 3.0
    with open(tmp_path / "out" / "clip.mp4.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == video.CSV_COLUMNS
    assert rows[0][:11] == [
        "frame", "face_id", "timestamp", "confidence", "success",
        "pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz",
    ]  # fmt: skip
    assert rows[0][11] == "x_0" and rows[0][78] == "x_67" and rows[0][79] == "y_0"
    assert len(rows) == 11 and all(len(r) == 147 for r in rows)
    assert [r[0] for r in rows[1:]] == [str(i + 1) for i in range(10)]  # OpenFace: from 1
    assert {r[1] for r in rows[1:]} == {"0"} and {r[4] for r in rows[1:]} == {"1"}
    assert float(rows[1][11]) == pytest.approx(lines[0]["faces"][0]["keypoints"][0][0], abs=0.01)
    # head pose: in the JSONL and the OpenFace columns
    assert set(first["faces"][0]["pose"]) >= {"yaw", "pitch", "roll"}
    assert all(cell != "" for cell in rows[1][5:11])
    assert abs(float(rows[1][9])) < 1.0  # pose_Ry in radians, not degrees
    assert not list((tmp_path / "out").glob("*.partial"))
    # the annotated copy (drawing is on by default): every kept frame, at its timestamp
    with av.open(str(tmp_path / "out" / "clip.annotated.mp4")) as container:
        stream = container.streams.video[0]
        stamps = [float(f.pts * stream.time_base) for f in container.decode(stream)]
    assert stamps == pytest.approx([i / 10 for i in range(10)], abs=2e-3)
    # annotating the folder again does not pick up the copy (the output is never scanned)
    items, _ = an.collect_inputs(
        [tmp_path], recursive=True, exclude=an.outputs._own_output(tmp_path / "out")
    )
    assert not [i for i in items if "annotated" in i.path.name]


def test_stride_and_span(face_clip: Path, tmp_path: Path) -> None:
    strided = [r.to_dict() for r in an.annotate(face_clip, video_stride=3, draw=False)]
    assert [r["frame"] for r in strided] == [0, 3, 6, 9]
    span = [r.to_dict() for r in an.annotate(face_clip, start=0.3, end=0.6, draw=False)]
    assert [r["frame"] for r in span] == [3, 4, 5, 6]
    assert span[0]["timestamp"] == pytest.approx(0.3)


def test_a_span_past_the_end_is_one_line_and_writes_nothing(
    face_clip: Path, tmp_path: Path
) -> None:
    """It used to end the whole run with a missing-file error and leave a .partial behind."""
    out = tmp_path / "out"
    warnings: list[str] = []
    with pytest.raises(DataError, match="no video frame between 5 s and the end"):
        an.run(
            [face_clip], out, an.AnnotateConfig.from_options(start=5.0), on_warning=warnings.append
        )
    assert warnings == []  # the error line says it: no warning repeating it first
    assert not out.exists() or not list(out.rglob("*"))


def test_smoothing_off_gives_the_raw_points(face_clip: Path) -> None:
    raw = [r.to_dict() for r in an.annotate(face_clip, smooth=False, detect_every=1, end=0.25)]
    smooth = [r.to_dict() for r in an.annotate(face_clip, detect_every=1, end=0.25)]
    # the first frame of a track is never smoothed; later ones differ
    assert raw[0]["faces"][0]["keypoints"] == smooth[0]["faces"][0]["keypoints"]
    assert raw[2]["faces"][0]["keypoints"] != smooth[2]["faces"][0]["keypoints"]


def test_min_confidence_leaves_faces_out_of_the_records_and_counts_them(face_clip: Path) -> None:
    records: list[dict] = []
    kept = an.run(
        [face_clip],
        None,
        an.AnnotateConfig.from_options(end=0.35),
        on_record=lambda r: records.append(r.to_dict()),
    )
    means = [np.mean(r["faces"][0]["confidence"]) for r in records]
    assert kept.faces == len(records) == 4 and kept.below_min_confidence == 0
    # a minimum between the frames' means: the less sure frames lose their face, the track
    # goes on (the ids stay)
    minimum = float(np.median(means))
    records.clear()
    config = an.AnnotateConfig.from_options(end=0.35, min_confidence=minimum)
    picky = an.run([face_clip], None, config, on_record=lambda r: records.append(r.to_dict()))
    # (the records round each confidence to 4 decimals: a margin for the means)
    below, above = sum(m < minimum - 1e-4 for m in means), sum(m > minimum + 1e-4 for m in means)
    assert below >= 1 and above >= 1
    assert below <= picky.below_min_confidence <= 4 - above
    assert picky.faces == 4 - picky.below_min_confidence
    assert len(records) == 4  # every frame keeps its record
    assert {f["track"] for r in records for f in r["faces"]} <= {0}
    everything = an.run(
        [face_clip], None, an.AnnotateConfig.from_options(end=0.35, min_confidence=1.0)
    )
    assert (everything.faces, everything.below_min_confidence) == (0, 4)


def test_resume_skips_finished_videos_and_redoes_interrupted_ones(
    face_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    an.run([face_clip], out, an.AnnotateConfig(draw=False))
    done = out / "clip.mp4.jsonl"
    stamp = done.stat().st_mtime_ns
    again = an.run([face_clip], out, an.AnnotateConfig(draw=False, skip_existing=True))
    assert again.skipped == 1 and again.videos == 0
    assert done.stat().st_mtime_ns == stamp
    # an interrupted run leaves only a .partial file: the video is done again
    done.rename(out / "clip.mp4.jsonl.partial")
    redo = an.run([face_clip], out, an.AnnotateConfig(draw=False, skip_existing=True))
    assert redo.videos == 1 and redo.skipped == 0
    assert len(read_jsonl(done)) == 10


def test_two_people_get_two_tracks(tmp_path: Path) -> None:
    a, b = photo("img11.jpg"), photo("img1.jpg")
    clip = encode(tmp_path / "two.mp4", [a] * 4 + [b] * 4)
    records = [r.to_dict() for r in an.annotate(clip, draw=False)]
    ids = [[f["track"] for f in r["faces"]] for r in records]
    assert ids[:4] == [[0]] * 4 and ids[4:] == [[1]] * 4


def test_max_faces_applies_to_videos(tmp_path: Path) -> None:
    """--max-faces keeps the N best faces of each frame, as for photos (it was ignored: the
    tracker did not go through FaceMarker.mark; issue 23)."""
    both = np.concatenate([photo("img11.jpg"), photo("img1.jpg")], axis=1)
    clip = encode(tmp_path / "pair.mp4", [both] * 4)
    every = [r.to_dict() for r in an.annotate(clip, draw=False)]
    one = [r.to_dict() for r in an.annotate(clip, draw=False, max_faces=1)]
    assert [len(r["faces"]) for r in every] == [2] * 4
    assert [len(r["faces"]) for r in one] == [1] * 4
    best = max(every[0]["faces"], key=lambda f: f["score"])
    assert one[0]["faces"][0]["box"] == best["box"]


def test_folders_pick_up_videos_next_to_photos(face_clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.MOV").write_bytes(face_clip.read_bytes())
    Image.fromarray(photo("img11.jpg")).save(folder / "a.jpg")
    (folder / "notes.txt").write_text("x")
    items, _ = an.collect_inputs([folder])
    assert [i.path.name for i in items] == ["a.jpg", "clip.MOV"]
    warnings: list[str] = []
    config = an.AnnotateConfig(draw=False, pts=True)
    summary = an.run([folder], tmp_path / "out", config, on_warning=warnings.append)
    assert summary.images == 1 and summary.videos == 1
    assert (tmp_path / "out" / "annotations.jsonl").is_file()
    assert (tmp_path / "out" / "clip.MOV.jsonl").is_file()
    # --pts is not silently dropped for the video: one line says what videos get instead
    assert warnings == [
        "--pts is for photos; each video gets its own <video>.jsonl (and <video>.csv with --csv)"
    ]


def test_an_explicit_file_is_probed_whatever_its_suffix(face_clip: Path, tmp_path: Path) -> None:
    odd = tmp_path / "clip.bin"
    odd.write_bytes(face_clip.read_bytes())
    assert video.is_video(odd)
    assert len(an.annotate(odd, draw=False, end=0.15)) == 2


def test_variable_frame_rate_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mkv"
    times = [0.0, 0.1, 0.15, 0.5, 0.55]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=1000)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for t in times:
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = round(t * 1000)
            frame.time_base = stream.codec_context.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = video.Decoded()
    got = [f.timestamp for f in video.decode(path, video.VideoConfig(), info)]
    assert got == pytest.approx(times, abs=1e-3)


# --------------------------------------------------------------------------- smoothing


def test_one_euro_follows_time_not_frames() -> None:
    still = video.OneEuro(1.0, 0.0)
    assert [float(still(np.array([5.0]), t / 10)[0]) for t in range(5)] == [5.0] * 5
    # the same step is followed further after a longer gap (timestamps, not frame counts)
    short, long = video.OneEuro(1.0, 0.0), video.OneEuro(1.0, 0.0)
    short(np.array([0.0]), 0.0)
    long(np.array([0.0]), 0.0)
    assert short(np.array([1.0]), 0.01)[0] < long(np.array([1.0]), 0.5)[0] < 1.0


def test_video_options_are_checked() -> None:
    for bad in ({"video_stride": 0}, {"detect_every": 0}, {"start": 2.0, "end": 1.0}):
        with pytest.raises(UsageError):
            an.AnnotateConfig.from_options(**bad).check()


# --------------------------------------------------------------------------- bad input


def test_a_text_file_named_mp4_is_one_clear_line(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video\n")
    warnings: list[str] = []
    with pytest.raises(DataError, match="not a video"):
        an.run([fake], tmp_path / "out", an.AnnotateConfig(draw=False), on_warning=warnings.append)
    assert warnings == []  # the error is the one line
    result = CliRunner().invoke(app, ["annotate", str(fake), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "Traceback" not in result.output and "not a video" in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_audio_only_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    warnings: list[str] = []
    with pytest.raises(DataError, match="no video stream"):
        an.run([path], None, an.AnnotateConfig(draw=False), on_warning=warnings.append)
    assert warnings == []


def test_a_truncated_video_keeps_the_frames_before_the_cut(face_clip: Path, tmp_path: Path) -> None:
    image = photo("img11.jpg")
    rng = np.random.default_rng(1)
    frames = [
        np.clip(image.astype(np.int16) + rng.integers(-20, 21, image.shape), 0, 255).astype(
            np.uint8
        )
        for _ in range(10)
    ]
    full = encode(tmp_path / "full.mkv", frames)
    cut = tmp_path / "cut.mkv"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    warnings: list[str] = []
    summary = an.run(
        [cut], tmp_path / "out", an.AnnotateConfig(draw=False), on_warning=warnings.append
    )
    kept = read_jsonl(tmp_path / "out" / "cut.mkv.jsonl")
    assert 0 < len(kept) < 10 and summary.frames == len(kept)
    assert len(warnings) == 1 and "cut short" in warnings[0]


def test_without_pyav_a_video_gives_the_install_line(
    face_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    with pytest.raises(UsageError) as caught:
        an.run([face_clip], tmp_path / "out", an.AnnotateConfig(draw=False))
    assert str(caught.value) == video.INSTALL_HINT
    assert "pip install 'facemark[video]'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_phone_rotation_is_applied(tmp_path: Path) -> None:
    upright = np.zeros((64, 48, 3), np.uint8)  # portrait, as a player shows it
    upright[:16, :16] = (255, 0, 0)  # red block top left
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # landscape, as a phone stores it
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a display matrix")
        stream.set_display_rotation(-90)  # shown turned 90 degrees clockwise
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames = list(video.decode(path, video.VideoConfig(), video.Decoded()))
    assert frames[0].image.shape == (64, 48, 3)
    assert frames[0].image[4:12, 4:12, 0].mean() > 200  # the red block is top left again
    assert frames[0].image[-12:-4, -12:-4, 0].mean() < 50


def test_the_progress_bar_knows_how_many_frames_come(face_clip: Path) -> None:
    """Video progress showed '464/?' and 'img/s'."""
    info = video.Decoded()
    every = sum(1 for _ in video.decode(face_clip, video.VideoConfig(), info))
    assert video.frames_to_read(face_clip, video.VideoConfig()) == every
    halves = video.frames_to_read(face_clip, video.VideoConfig(video_stride=2))
    assert halves == -(-every // 2)
    assert video.frames_to_read(face_clip, video.VideoConfig(end=0.1)) < every
