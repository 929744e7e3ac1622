# nbgrader configuration for LR Schedules.
#
# `lrgrade` copies this file into every course directory it builds (release, check,
# grade, course-dir) and appends `c.CourseDirectory.root`, so these settings are the
# single place to change how the course is graded.
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)

from lrgrade.preprocessors import GuardedExecute, HideHiddenTests, StderrToStdout

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads the file)

c.CourseDirectory.course_id = "lr-schedules"

# Torch takes a few seconds to import on a small CPU and the quick-mode experiments a few
# more: 60 s per cell leaves room for both, while a student's infinite loop costs one
# minute per cell, not the whole class. The cell is interrupted and the rest still run.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# A student who deletes a test cell gets it back, and is graded on it.
c.OverwriteCells.add_missing_cells = True

# GuardedExecute is nbgrader's Execute plus three things (lrgrade/preprocessors.py):
# the kernel starts in the sandbox when `lrgrade grade` asks for it (lrgrade/sandbox.py),
# a guard zeroes any test cell run after the notebook changed what the tests use
# (lrgrade/guard.py), and each cell's output is capped.
#
# nbgrader gives 0 to any test cell that writes to stderr, so one stray warning (a
# deprecation, a torch UserWarning) would zero a correct answer. StderrToStdout, run right
# after execution, turns stderr in graded cells into stdout: still shown in feedback,
# no longer fatal. Errors (failed asserts, exceptions) are unaffected.
c.Autograde.autograde_preprocessors = [
    GuardedExecute,
    StderrToStdout,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# Feedback shows which tests passed and the visible messages, never the hidden tests.
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, HideHiddenTests]

# Keep a runaway print loop from producing a multi-megabyte notebook.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40
