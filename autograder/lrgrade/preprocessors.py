"""nbgrader preprocessors used by autograder/nbgrader_config.py."""
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade


class StderrToStdout(NbGraderPreprocessor):
    """Re-label stderr output of graded cells as stdout.

    nbgrader scores a test cell 0 if it wrote anything to stderr, so a harmless warning
    raised while a correct answer is tested would cost the student the points. Failed
    asserts and exceptions are ``error`` outputs, which this leaves alone.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources
