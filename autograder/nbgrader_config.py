# nbgrader configuration for LR Schedules.
#
# `lrgrade` copies this file into every course directory it builds (release, check,
# grade, course-dir) and appends `c.CourseDirectory.root`, so these settings are the
# single place to change how the course is graded.
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)

from lrgrade.preprocessors import StderrToStdout

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads the file)

c.CourseDirectory.course_id = "lr-schedules"

# Torch takes a few seconds to import on a small CPU and the quick-mode experiments a few
# more: 60 s per cell leaves room for both, while a student's infinite loop costs one
# minute per cell, not the whole class. The cell is interrupted and the rest still run.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# A student who deletes a test cell gets it back, and is graded on it.
c.OverwriteCells.add_missing_cells = True

# nbgrader gives 0 to any test cell that writes to stderr, so one stray warning (a
# deprecation, a torch UserWarning) would zero a correct answer. This step, run right
# after execution, turns stderr in graded cells into stdout: still shown in feedback,
# no longer fatal. Errors (failed asserts, exceptions) are unaffected.
c.Autograde.autograde_preprocessors = [
    Execute,
    StderrToStdout,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# Keep a runaway print loop from producing a multi-megabyte notebook.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40
