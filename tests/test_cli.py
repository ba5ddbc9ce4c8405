"""The `synthdata` console script, in-process and as a real subprocess."""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from prefect_synthdata.cli import build_parser, main
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
        "sample": False,  # never randomized
    }
    power = next(p for p in shapes["params"] if p["name"] == "light_power")
    assert power["sample"] == {"min": 0.6, "max": 1.4}  # a range inside the bounds
    assert shapes["options"] == {"preview": True}


def test_generators_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generators"]) == 0
    out = capsys.readouterr().out
    assert "shapes" in out and "num_objects" in out and "[1, 64]" in out
    assert "[0, 2147483647]" in out and "e+09" not in out


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
    assert "Prefect API ready" in captured.err
    summary = dict(line.split(None, 1) for line in captured.err.splitlines()[-6:] if line.strip())
    assert summary["dataset"] == uri and summary["images"] == "2"
    assert int(summary["annotations"]) > 0 and summary["size"].endswith("KiB")
    assert "of which Prefect API start-up" in summary["time"]


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


BAD_INPUT = [
    (["--param", "widht=256"], "error: unknown parameter 'widht' (did you mean 'width'?)\n"),
    (["--param", "width=1"], "error: 'width' must be >= 32, got 1\n"),
    (["--generator", "shapez"], "error: unknown generator 'shapez' (did you mean 'shapes'?)"),
    (["--name", "bad/name"], "error: dataset name 'bad/name' must match"),
    (["--provider", "infinity"], "error: --provider infinity needs --url and --token"),
    (["--provider", "local", "--credentials-block", "x"], "error: give --provider or"),
    (["--jobs", "0"], "argument --jobs: must be between 1 and 100000, got 0"),
    (["--jobs", "many"], "argument --jobs: expected a whole number, got 'many'"),
    (["--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (
        ["--name", "a/b", "--param", "widht=1", "--param", "height=1"],
        "error: 3 problems:\n  - dataset name 'a/b' must match",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_generate_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = _exit_code(["generate", "--jobs", "4", "--dest", str(tmp_path / "out"), *args])
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err and captured.err.count("widht") <= 1
    assert "Traceback" not in captured.err and "pydantic" not in captured.err
    assert captured.out == "" and not (tmp_path / "out").exists()


def _exit_code(argv: list[str]) -> int:
    """main's return value, or the status of argparse's SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit:
        return int(exit.code or 0)


def test_bad_input_is_answered_without_importing_prefect(tmp_path: Path) -> None:
    """The error path of a real `synthdata` process never imports Prefect (that import alone
    takes seconds), and reports a typo of every job once."""
    probe = (
        "import sys; from prefect_synthdata.cli import main; "
        "code = main(sys.argv[1:]); "
        "print('prefect imported' if 'prefect' in sys.modules else 'prefect not imported'); "
        "sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "generate", "--jobs", "20", "--param", "widht=256",
         "--dest", str(tmp_path)],
        env=subprocess_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == "prefect not imported"
    assert done.stderr == "error: unknown parameter 'widht' (did you mean 'width'?)\n"


def test_help_explains_every_option_with_its_default_and_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found += [c for sub in action.choices.values() for c in commands(sub)]
        return found

    for command in commands(build_parser()):
        for action in command._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"{command.prog} {action.option_strings or action.dest}"
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    for shown in (
        "(default: shapes)",
        "(default: 4)",
        "(default: 0)",
        "(default: synthetic-shapes)",
    ):
        assert shown in text
    assert "--credentials-block TYPE/NAME" in text and "examples: synthdata generate" in text


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
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["version"], row["num_images"], row["latest"]) == (
        "listed",
        "v1",
        1,
        True,
    )
    assert row["size"] > 0 and row["created"]
    assert main(["datasets", "ls", str(tmp_path)]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "NAME",
        "VERSION",
        "IMAGES",
        "ANNOTATIONS",
        "SIZE",
        "CREATED",
        "(UTC)",
    ]
    assert line.split()[:3] == ["listed", "v1", "1"] and line.endswith("LATEST")


def test_datasets_ls_of_a_missing_path_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["datasets", "ls", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'nope'} does not exist or is not a directory\n"


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


def test_readme_bad_input_examples_print_what_the_readme_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each `$ synthdata ...` of the README's bad-input example, run as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    text = readme[readme.index("Bad input is answered before Prefect") :]
    block = text[text.index("```\n") + 4 : text.index("\n```", text.index("```\n") + 4)]
    examples: list[list[str]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            examples.append([line[2:]])
        else:
            examples[-1].append(line)
    assert len(examples) == 2
    monkeypatch.chdir(tmp_path)
    for command, *expected in examples:
        assert _exit_code(command.split()[1:]) == 2
        assert capsys.readouterr().err.splitlines() == expected


def test_a_reader_that_goes_away_gets_no_traceback() -> None:
    """`synthdata generators | head -1`: the pipe closes before the listing is written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect_synthdata.cli", "generators"],
        env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the child writes anything
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err, err


def test_a_configured_prefect_api_that_is_down_is_one_error(tmp_path: Path) -> None:
    env = subprocess_env(PREFECT_API_URL="http://127.0.0.1:9/api")  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "prefect_synthdata.cli", "generate", "--jobs", "1",
         "--dest", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "error: the Prefect API at http://127.0.0.1:9/api does not answer"
    )
    assert not (tmp_path / "out").exists()
