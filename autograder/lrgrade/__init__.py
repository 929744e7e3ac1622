"""Build, release and grade the LR Schedules notebooks with nbgrader (`lrgrade --help`)."""
import sys

# nbformat validates notebooks with jsonschema, which imports rfc3987-syntax (installed for
# jupyter-events) to check the "iri" string format; that package builds three Earley parsers
# when it is imported: 2.9 s of CPU in every process that reads a notebook. No schema that
# lrgrade validates against (nbformat's) uses that format, so its processes go without it:
# jsonschema imports it inside `suppress(ImportError)` and treats it as not installed.
sys.modules.setdefault("rfc3987_syntax", None)
