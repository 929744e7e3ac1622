"""Every solution notebook runs top to bottom, as a learner runs it (quick mode), with no error
and nothing on stderr (a warning in a learner's notebook is a defect too).

Grading skips the cells tagged ``illustration`` (experiments, plots), so this is the test that
runs them. Two notebooks run at a time, each in its own kernel.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmark import notebook_env, run_notebook
from conftest import stream_outputs
from lrgrade.notebooks import assignments, source_path

pytestmark = pytest.mark.slow  # 13 kernels: about a minute on 2 cores
ASSIGNMENTS = assignments()


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    env = notebook_env(quick=True)

    def run(assignment: str):
        workdir = tmp_path_factory.mktemp(assignment)
        return run_notebook(source_path(assignment), workdir, env, timeout=600)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(ASSIGNMENTS, pool.map(run, ASSIGNMENTS)))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_runs_top_to_bottom_without_errors_or_warnings(executed, assignment):
    _, _, error, nb = executed[assignment]
    assert error is None, f"{assignment} stopped: {error}"
    stderr = stream_outputs(nb, "stderr")
    assert not stderr, f"{assignment} wrote to stderr (cell index, text): {stderr}"
