"""`synthdata generate` as a user sees it in a terminal: a real run in a pseudo-terminal,
its output replayed on a terminal emulator (pyte), line by line."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte

from tests.conftest import subprocess_env

COLUMNS, ROWS = 250, 300
LOG_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3} \| (INFO|WARNING|ERROR)")


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 240) -> tuple[int, str]:
    """Run `synthdata ARGS` on a pseudo-terminal; returns its exit status and the raw output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect_synthdata.cli", *args],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        proc.kill()
        os.close(master)
    return code, output.decode(errors="replace")


def screen_lines(output: str) -> list[str]:
    """The lines a terminal of COLUMNS x ROWS shows after `output`."""
    screen = pyte.Screen(COLUMNS, ROWS)
    pyte.Stream(screen).feed(output.replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display if line.strip()]


def test_progress_and_log_lines_never_share_a_line(tmp_path: Path, synthdata_home: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    env = subprocess_env(
        SYNTHDATA_HOME=str(synthdata_home),
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        TERM="xterm-256color",
    )
    code, output = run_in_terminal(
        ["generate", "--jobs", "6", "--param", "width=96", "--param", "height=96",
         "--param", "frames=3", "--dest", str(tmp_path / "out"), "--name", "tty"],
        env,
    )  # fmt: skip
    lines = screen_lines(output)
    assert code == 0, "\n".join(lines)
    progress = [line for line in lines if "jobs finished" in line]
    logs = [line for line in lines if LOG_LINE.search(line)]
    assert progress and logs, "\n".join(lines)
    shared = [line for line in progress if LOG_LINE.search(line)]
    assert not shared, "\n".join(shared)
    assert "6/6 jobs finished" in progress[-1]
    assert any("wait_for_batch" in line for line in logs)  # logged while the bar was live
    assert any("Prefect API ready" in line for line in lines)
    assert any(line.startswith("images       18") for line in lines)  # 6 jobs x 3 frames
    assert "Traceback" not in output


def test_an_error_inside_the_flow_is_one_message_without_traceback(
    tmp_path: Path, synthdata_home: Path
) -> None:
    """A version already published with other content fails inside the flow run: the
    terminal shows Prefect's log lines and one `error:` line, no traceback."""
    from prefect.settings import PREFECT_API_URL

    env = subprocess_env(
        SYNTHDATA_HOME=str(synthdata_home), PREFECT_API_URL=str(PREFECT_API_URL.value())
    )
    base = [sys.executable, "-m", "prefect_synthdata.cli", "generate", "--jobs", "1",
            "--dest", str(tmp_path), "--name", "clash", "--version", "v1",
            "--param", "width=32", "--param", "height=32"]  # fmt: skip
    first = subprocess.run(base, env=env, capture_output=True, text=True, timeout=240)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(
        [*base, "--seed", "1"], env=env, capture_output=True, text=True, timeout=240
    )
    assert second.returncode == 2
    assert "Traceback" not in second.stderr
    errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {tmp_path / 'clash' / 'v1'} already holds a different dataset; choose another version"
    ]
