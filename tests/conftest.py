import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "autograder"))
from lrgrade.nbgrader_runner import nbgrader_env  # noqa: E402

os.environ.setdefault("MPLBACKEND", "Agg")


def lrgrade(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the lrgrade command line as a user would, from the repository root."""
    full_env = nbgrader_env()
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "lrgrade.cli", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def stream_outputs(nb, name: str | None = None) -> list[tuple[int, str]]:
    """(cell index, text) of what a notebook's code cells printed (a dict or a NotebookNode);
    ``name``: only that stream ("stdout" or "stderr")."""
    return [(index, "".join(out.get("text", ""))[:300]) for index, cell in enumerate(nb["cells"])
            if cell["cell_type"] == "code" for out in cell.get("outputs", [])
            if out.get("output_type") == "stream" and name in (None, out.get("name"))]


@pytest.fixture
def run_lrgrade():
    return lrgrade


@pytest.fixture
def clean_env(monkeypatch):
    """No course setting from the environment: the default device, full mode, not grading."""
    for name in ("LRCOURSE_DEVICE", "LRCOURSE_QUICK", "NBGRADER_EXECUTION", "CI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def digits():
    """The digits data set on the CPU, loaded once."""
    from lrcourse import load_digits

    return load_digits("cpu")
