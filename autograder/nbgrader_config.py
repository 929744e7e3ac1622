# nbgrader configuration for LR Schedules.
#
# `lrgrade` copies this file into every course directory it builds (release, check,
# grade, course-dir) and appends `c.CourseDirectory.root`, so these settings are the
# single place to change how the course is graded.
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)

from lrgrade.notebooks import REPO
from lrgrade.preprocessors import AnswersOnly, SafeFeedback, SafeOutputs, TrustedExecute
from lrgrade.sandbox import package_dir

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads the file)

c.CourseDirectory.course_id = "lr-schedules"

# What of this course a student's sandboxed kernel may read (the helper package and the
# shipped data sets, read-only) and which of its settings it keeps (quick mode, threads,
# device). The grader's results are also keyed on the code in `read_only` folders: a new
# verdict rule in lrcourse regrades everyone.
c.SandboxKernelManager.read_only = [str(package_dir("lrcourse")), str(REPO / "data")]
c.SandboxKernelManager.pass_env = ["LRCOURSE_QUICK", "LRCOURSE_THREADS", "LRCOURSE_DEVICE"]

# The course's test form: test cells are lists of cases made with it (lrcourse/checks.py),
# read and judged by the grader, and run in the kernel by its `run_in_kernel`.
c.TrustedExecute.test_form = "lrcourse.checks"
# Cells tagged "illustration" (experiments, plots) do not run under grading: no test needs them.
c.TrustedExecute.skip_tags = ["illustration"]
# The static scan (flags for a person to read) also watches the course's helpers.
c.StaticScan.protected_names = ["lrcourse", "checks", "assert_close", "assert_true", "assert_raises"]

# A submission contributes only its answer cells (matched by grade_id); everything else,
# deleted or edited test cells included, comes from the released notebook
# (lrgrade/preprocessors.py, AnswersOnly).
c.Autograde.sanitize_preprocessors = [AnswersOnly, CheckCellMetadata]

# TrustedExecute (lrgrade/preprocessors.py) is nbgrader's Execute with: the kernel in the
# sandbox when `lrgrade grade` asks for it (lrgrade/sandbox.py); test cells judged in this
# process from plain data the kernel returns (lrgrade/trusted.py), so the student's code
# never sees an expected value and cannot write a test's outcome; and limits on CPU time.
c.Autograde.autograde_preprocessors = [
    TrustedExecute,
    SafeOutputs,  # only inert outputs are kept: formgrader shows nothing active either
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# Limits are on CPU time, so a busy machine does not turn correct work into zeros: a cell
# may use 60 s of CPU (the kernel and its children). A cell still running after it is
# interrupted, and killed 10 CPU-seconds later. The wall clock is only a backstop, for a
# cell that waits without computing (a sleep loop): 600 s. The kernel has 300 s to start.
c.TrustedExecute.cpu_limit = 60
c.TrustedExecute.cpu_grace = 10
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True
c.Execute.startup_timeout = 300

# Feedback shows which tests passed and the visible messages, never the hidden tests, and
# nothing active (scripts, HTML, links) from a submission.
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, SafeFeedback]

# Keep a runaway print loop from producing a multi-megabyte notebook.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40
