"""The README's examples, run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import subprocess_env

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_block(after: str) -> str:
    """The first ```python block of the README that follows the text `after`."""
    text = README.read_text()
    match = re.search(r"```python\n(.*?)```", text[text.index(after) :], re.S)
    assert match is not None, f"no python block after {after!r}"
    return match.group(1)


@pytest.mark.timeout(240)
def test_block_example_runs_as_a_script_and_finishes(tmp_path: Path, synthdata_home: Path) -> None:
    """Regression: at module level, the example ran again in every spawned render worker and hung."""
    from prefect.settings import PREFECT_API_URL

    script = tmp_path / "job_example.py"
    script.write_text(readme_python_block("A saved **SynthData Job** block"))
    env = subprocess_env(
        SYNTHDATA_HOME=str(synthdata_home), PREFECT_API_URL=str(PREFECT_API_URL.value())
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Warning" not in done.stderr, done.stderr[
        -3000:
    ]  # steps run as flow runs, not loose tasks
    uri = Path(done.stdout.strip().splitlines()[-1])
    assert uri.parent == tmp_path / "datasets" / "shapes-small"
    assert (uri / "_SUCCESS").is_file()
