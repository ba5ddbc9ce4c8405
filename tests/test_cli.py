"""The `synthdata` console script, in-process and as a real subprocess."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from prefect_synthdata.cli import main
from tests.conftest import subprocess_env


def test_generators_json_lists_generator_objects(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generators", "--json"]) == 0
    generators = json.loads(capsys.readouterr().out)
    shapes = next(g for g in generators if g["name"] == "shapes")
    width = next(p for p in shapes["params"] if p["name"] == "width")
    assert width == {
        "name": "width",
        "type": "int",
        "default_value": 512,
        "options": {"min": 32, "max": 2048},
    }
    assert shapes["options"] == {"preview": True}


def test_generators_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generators"]) == 0
    out = capsys.readouterr().out
    assert "shapes" in out and "num_objects" in out and "[1, 64]" in out


def test_generate_prints_uri_and_reports_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "generate",
        "--provider",
        "local",
        "--generator",
        "shapes",
        "--jobs",
        "2",
        "--param",
        "width=64",
        "--param",
        "height=64",
        "--dest",
        str(tmp_path),
        "--name",
        "cli-demo",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    uri = captured.out.strip().splitlines()[-1]
    assert Path(uri).parent == tmp_path / "cli-demo" and (Path(uri) / "_SUCCESS").is_file()
    assert "2/2 jobs finished" in captured.err


def test_generate_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "generate",
        "--jobs",
        "2",
        "--preview",
        "--param",
        "frames=5",
        "--param",
        "width=64",
        "--param",
        "height=64",
        "--dest",
        str(tmp_path),
        "--name",
        "prev",
    ]
    assert main(args) == 0
    root = Path(capsys.readouterr().out.strip().splitlines()[-1])
    coco = json.loads((root / "annotations.coco.json").read_text())
    assert len(coco["images"]) == 2  # one frame per preview job, whatever `frames` says


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "num_jobs"),
        (["--param", "width=1"], "'width' must be >= 32"),
        (["--generator", "teapot"], "unknown generator 'teapot'"),
        (["--provider", "infinity"], "needs --url and --token"),
    ],
)
def test_generate_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["generate", "--dest", str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_param_needs_key_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["generate", "--param", "width"])
    assert "key=value" in capsys.readouterr().err


def test_datasets_ls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "generate",
                "--jobs",
                "1",
                "--param",
                "width=64",
                "--param",
                "height=64",
                "--dest",
                str(tmp_path),
                "--name",
                "listed",
                "--version",
                "v1",
            ]
        )
        == 0
    )
    (tmp_path / "listed" / "broken").mkdir()  # no _SUCCESS: not a dataset
    capsys.readouterr()
    assert main(["datasets", "ls", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"listed": ["v1"]}


def test_main_job_script_twice_submits_once(tmp_path: Path, synthdata_home: Path) -> None:
    """The README's main job, as a user runs it: a second run is a cache hit."""
    from prefect.settings import PREFECT_API_URL

    script = Path(__file__).resolve().parents[1] / "flows" / "generate_and_ingest.py"
    env = subprocess_env(
        SYNTHDATA_HOME=str(synthdata_home), PREFECT_API_URL=str(PREFECT_API_URL.value())
    )
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(script), "--jobs", "2"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(done.stdout)
    assert outputs[0].splitlines()[0] == outputs[1].splitlines()[0]
    assert (
        outputs[0]
        .splitlines()[0]
        .startswith(f"dataset: {tmp_path / 'datasets' / 'synthetic-shapes'}")
    )
    assert "0 files written" in outputs[1]
    with sqlite3.connect(synthdata_home / "local" / "jobs.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 1


def test_explicit_local_provider_wins_over_the_environment_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: with SYNTHDATA_CREDENTIALS_BLOCK set, `--provider local` ran on the block's service."""
    from prefect_synthdata.blocks import InfinityCredentials

    InfinityCredentials(url="http://127.0.0.1:9", token="t").save("cli-env-block", overwrite=True)
    monkeypatch.setenv("SYNTHDATA_CREDENTIALS_BLOCK", "cli-env-block")
    args = ["generate", "--jobs", "1", "--param", "width=64", "--param", "height=64"]
    assert (
        main([*args, "--provider", "local", "--dest", str(tmp_path), "--name", "local-wins"]) == 0
    )
    assert (Path(capsys.readouterr().out.strip().splitlines()[-1]) / "_SUCCESS").is_file()
    # without --provider the environment's block applies (nothing listens on its port)
    assert main([*args, "--dest", str(tmp_path), "--name", "env-block"]) == 2
    assert "127.0.0.1:9" in capsys.readouterr().err
