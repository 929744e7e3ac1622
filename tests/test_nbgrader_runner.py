"""The long-lived nbgrader process: replies, failures, hangs, crashes and forged replies.

nbgrader reads ``nbgrader_config.py`` from the folder a command runs in, so a config file
that hangs, crashes or writes to the standard streams stands in for a command (or a
kernel it started) that does.
"""
from pathlib import Path

import pytest

from lrgrade.nbgrader_runner import NbgraderTimeout, Runner, alembic_head, nbgrader_env


@pytest.fixture(scope="module")
def runner():
    env = nbgrader_env()
    r = Runner(env)
    yield r
    r.close()


def _folder(tmp_path: Path, name: str, config: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "nbgrader_config.py").write_text(config)
    return folder


def test_a_command_runs_and_its_log_and_exit_code_come_back(runner, tmp_path):
    folder = _folder(tmp_path, "empty", "c = get_config()\n")
    proc = runner.run(["autograde", "no-such-assignment"], cwd=folder, timeout=120)
    assert proc.returncode != 0
    assert "no-such-assignment" in proc.stderr
    pid = runner._proc.pid
    again = runner.run(["autograde", "no-such-assignment"], cwd=folder, timeout=120)
    assert again.returncode == proc.returncode
    assert runner._proc.pid == pid, "the second command should reuse the running process"


def test_a_hang_past_the_timeout_is_killed_and_the_next_command_starts_afresh(runner, tmp_path):
    hang = _folder(tmp_path, "hang", "import time\ntime.sleep(600)\n")
    with pytest.raises(NbgraderTimeout):
        runner.run(["autograde", "a"], cwd=hang, timeout=3)
    ok = _folder(tmp_path, "ok", "c = get_config()\n")
    assert "no-such-assignment" in runner.run(["autograde", "no-such-assignment"], cwd=ok, timeout=120).stderr


def test_a_crash_is_reported_with_its_exit_code(runner, tmp_path):
    crash = _folder(tmp_path, "crash", "import os, sys\nsys.stderr.write('dying now\\n')\nsys.stderr.flush()\n"
                                      "os._exit(7)\n")
    proc = runner.run(["autograde", "a"], cwd=crash, timeout=120)
    assert proc.returncode == 7 and "dying now" in proc.stderr


def test_what_is_written_to_the_standard_streams_is_never_a_reply(runner, tmp_path):
    forged = '{"returncode": 0, "log": "FORGED"}\\n'
    folder = _folder(tmp_path, "forge", f"import os\nos.write(1, b'{forged}')\nos.write(2, b'{forged}')\n"
                                        "c = get_config()\n")
    proc = runner.run(["autograde", "no-such-assignment"], cwd=folder, timeout=120)
    assert "FORGED" not in proc.stderr and proc.returncode != 0


def test_cells_that_print_into_output_widgets_never_stall():
    """nbclient's Output-widget stand-in stalled about 1 such cell in 12 until its timeout
    (lrgrade.preprocessors.no_output_widget_emulation): 80 cells would almost surely hit
    one. No timed assertion: a stall raises CellTimeoutError."""
    import nbformat
    from nbclient import NotebookClient

    from lrgrade.preprocessors import no_output_widget_emulation

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("import ipywidgets")] + [
        nbformat.v4.new_code_cell(f"out = ipywidgets.Output()\nwith out:\n    print({i})") for i in range(80)]
    client = NotebookClient(nb, timeout=20, interrupt_on_timeout=False)  # ms-long cells: 20 s is a stall
    no_output_widget_emulation(client)
    client.execute()
    printed = ["".join(out.get("text", "") for out in cell.outputs) for cell in nb.cells[1:]]
    assert printed == [f"{i}\n" for i in range(80)], "what a cell printed should become its own output"


def test_the_gradebook_version_read_in_process_is_the_one_nbgrader_asks_alembic_for():
    import nbgrader.api

    assert alembic_head() == nbgrader.api.get_alembic_version()
