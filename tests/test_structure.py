"""The shape of the package: no import circles, and every --help default is the code's."""

from __future__ import annotations

import ast
import dataclasses
import os
from pathlib import Path

import pytest
import typer.main

from facemark import annotator, evaluate
from facemark.cli import app
from facemark.config import DEFAULTS, default_text
from facemark.detectors.base import DetectorConfig
from facemark.video import VideoConfig

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "facemark"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every facemark module ``path`` imports: at the top, inside a function, or only for
    type checking (a type-only import is still a dependency a reader has to follow)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name in known:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: _imports(p, set(files)) - {m} for m, p in files.items()}
    # a module imports its parent packages implicitly; those edges are not circles of ours
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def test_the_import_graph_has_no_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep] if dep in stack else [node, dep]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


#: The layers of the package, bottom up (docs/architecture.md draws them): a module may import
#: its own layer and those below, never one above.  Packages count with their modules.
LAYERS = [
    # 0 plain data and helpers: no torch, no images
    {"facemark", "errors", "paths", "shape", "boxes", "files", "config", "confidence", "lazy"},
    # 1 pixels, geometry, files on disk
    {"images", "transforms", "metrics", "pose", "face3d", "draw", "plot", "checkpoint"}
    | {"devices", "coco", "results", "download"},
    # 2 networks, detectors and labelled data
    {"models", "faceness", "quantize", "detectors", "landmarker", "registry", "data"}
    | {"detection"},
    # 3 finding models by name, the one inference path, trainable tasks
    {"hub", "pipeline", "tasks", "runs"},
    # 4 what the commands do
    {"train", "evaluate", "annotator", "video", "export", "preview"},
    # 5 interfaces
    {"cli", "ray", "about", "__main__"},
]


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "facemark"
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    pytest.fail(f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)")


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
        for m, deps in sorted(_graph().items())
        for d in sorted(deps)
        if _layer(d) > _layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_source_file_is_over_600_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, long


def test_results_write_themselves_out_as_to_dict() -> None:
    """One result-object style: every result class has ``to_dict()``; nothing says as_dict."""
    from facemark.annotator import Summary
    from facemark.download import FetchResult
    from facemark.evaluate import Evaluation
    from facemark.export import ExportResult, Int8Result
    from facemark.preview import PreviewResult
    from facemark.results import Face, ImageResult
    from facemark.train import TrainResult
    from facemark.video import VideoResult

    classes = (Summary, FetchResult, Evaluation, ExportResult, Int8Result, PreviewResult)
    for cls in (*classes, Face, ImageResult, VideoResult, TrainResult):
        assert callable(getattr(cls, "to_dict", None)), cls
    said = [p.name for p in PACKAGE.rglob("*.py") if "def as_dict(" in p.read_text()]
    assert not said, said


def _params(command: str) -> dict[str, object]:
    click_app = typer.main.get_command(app)
    cmd = click_app.commands[command]  # type: ignore[attr-defined]
    return {p.name: p for p in cmd.params}


@pytest.mark.parametrize(
    ("option", "value"),
    [
        *[
            (f.name, getattr(annotator.AnnotateConfig(), f.name))
            for f in dataclasses.fields(annotator.AnnotateConfig)
            if f.name not in ("detection", "video")
        ],
        *[(f.name, getattr(DetectorConfig(), f.name)) for f in dataclasses.fields(DetectorConfig)],
        *[(f.name, getattr(VideoConfig(), f.name)) for f in dataclasses.fields(VideoConfig)],
    ],
)
def test_annotate_help_defaults_are_the_code_defaults(option: str, value: object) -> None:
    params = _params("annotate")
    name = {"csv": "csv_out"}.get(option, option)
    assert params[name].default == value  # type: ignore[attr-defined]


def test_evaluate_and_train_help_defaults_are_the_code_defaults() -> None:
    from facemark.config import EVALUATE, EXPORT

    ev = _params("evaluate")
    assert ev["batch_size"].default == evaluate.BATCH_SIZE  # type: ignore[attr-defined]
    for field in dataclasses.fields(EVALUATE):  # each default declared once, in config
        assert ev[field.name].default == getattr(EVALUATE, field.name), field.name
    export = _params("export")
    assert export["opset"].default == EXPORT.opset and export["check"].default == EXPORT.check
    assert export["calib"].show_default == str(EXPORT.calib)
    assert ev["threshold"].default == DetectorConfig().threshold  # type: ignore[attr-defined]
    train = _params("train")
    for field in dataclasses.fields(DEFAULTS["landmarks"]):
        shown = train[field.name].show_default  # type: ignore[attr-defined]
        assert shown == default_text(field.name)
        assert str(getattr(DEFAULTS["landmarks"], field.name)) in shown
        assert str(getattr(DEFAULTS["detector"], field.name)) in shown


def test_help_shows_the_defaults_and_no_bool_placeholder() -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    for command in ("annotate", "evaluate", "train", "fetch-data", "models", "info"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output
    text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert f"{DEFAULTS['landmarks'].epochs}; detector {DEFAULTS['detector'].epochs}" in text


def test_the_sdist_holds_what_the_tests_and_docs_need(tmp_path: Path) -> None:
    """An unpacked sdist runs its own tests: helpers, fixtures and docs travel with them."""
    import tarfile

    from setuptools import build_meta

    root = PACKAGE.parents[1]
    cwd = Path.cwd()
    try:
        os.chdir(root)
        name = build_meta.build_sdist(str(tmp_path))
    finally:
        os.chdir(cwd)
    with tarfile.open(tmp_path / name) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
        info = tar.extractfile(f"{name.removesuffix('.tar.gz')}/PKG-INFO").read().decode()
    for path in root.joinpath("tests").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.relative_to(root).as_posix() in members, path
    for doc in root.joinpath("docs").glob("*.md"):
        assert f"docs/{doc.name}" in members
    assert "License-Expression: MIT" in info
