"""Mutants: single small edits to the code of a solution region (see lrgrade.mutate)."""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .scan import parse_python

BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
SKIP_PRAGMA = "no-mutate"


# -- mutants -------------------------------------------------------------------------------
@dataclass
class Mutant:
    grade_id: str            # the solution cell
    line: int                # line in the cell's source (1-based)
    description: str
    source: str              # the whole mutated cell source
    cell_index: int = -1     # index of the cell in the notebook
    file_line: int | None = None  # line in the notebook's .py source, where known


_BINOP_SWAPS = {
    ast.Add: (ast.Sub,), ast.Sub: (ast.Add,), ast.Mult: (ast.Div,),
    ast.Div: (ast.Mult, ast.FloorDiv), ast.FloorDiv: (ast.Div,), ast.Pow: (ast.Mult,),
}
_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**",
            ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
            ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
            ast.And: "and", ast.Or: "or"}
_CMP_SWAPS = {
    ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt, ast.GtE), ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE), ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,), ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
}
_NAME_SWAPS = {"min": "max", "max": "min"}
_ATTR_SWAPS = {"min": "max", "max": "min", "amin": "amax", "amax": "amin", "argmin": "argmax",
               "argmax": "argmin", "minimum": "maximum", "maximum": "minimum", "nanmin": "nanmax",
               "nanmax": "nanmin", "floor": "ceil", "ceil": "floor"}


def solution_regions(source: str) -> list[tuple[int, int]]:
    """The (first, last) lines strictly inside each BEGIN/END SOLUTION pair, 1-based."""
    regions, start = [], None
    for number, text in enumerate(source.splitlines(), 1):
        stripped = text.strip()
        if stripped.startswith("#") and BEGIN in stripped:
            start = number
        elif stripped.startswith("#") and END in stripped and start is not None:
            if number - 1 >= start + 1:
                regions.append((start + 1, number - 1))
            start = None
    return regions


def _is_number(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool))


def _is_one(node: ast.AST) -> bool:
    return _is_number(node) and node.value == 1


def _variants(node: ast.AST, parent: ast.AST | None) -> Iterator[tuple[ast.AST, str]]:
    """(replacement, kind) for every single edit of ``node`` itself (not of its children)."""
    new = copy.deepcopy
    if isinstance(node, ast.BinOp):
        for op in _BINOP_SWAPS.get(type(node.op), ()):
            m = new(node)
            m.op = op()
            yield m, "operator"
        if isinstance(node.op, (ast.Add, ast.Sub)) and _is_one(node.right):
            yield new(node.left), "off by one"
        if isinstance(node.op, ast.Add) and _is_one(node.left):
            yield new(node.right), "off by one"
    elif isinstance(node, ast.AugAssign):
        for op in _BINOP_SWAPS.get(type(node.op), ()):
            m = new(node)
            m.op = op()
            yield m, "operator"
        if isinstance(node.op, (ast.Add, ast.Sub)) and _is_one(node.value):
            yield ast.Pass(), "off by one"
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for swap in _CMP_SWAPS.get(type(op), ()):
                m = new(node)
                m.ops[i] = swap()
                yield m, "comparison"
    elif isinstance(node, ast.BoolOp):
        m = new(node)
        m.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield m, "and/or"
    elif isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            yield new(node.operand), "unary minus dropped"
        elif isinstance(node.op, ast.Not):
            yield new(node.operand), "not dropped"
    elif isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in _NAME_SWAPS:
            m = new(node)
            m.func.id = _NAME_SWAPS[func.id]
            yield m, "min/max"
        elif isinstance(func, ast.Attribute) and func.attr in _ATTR_SWAPS:
            m = new(node)
            m.func.attr = _ATTR_SWAPS[func.attr]
            yield m, "min/max" if func.attr not in ("floor", "ceil") else "floor/ceil"
        if isinstance(func, ast.Name) and func.id == "range" and node.args and not node.keywords:
            i = 0 if len(node.args) == 1 else 1
            if not isinstance(node.args[i], ast.Starred):
                for op in (ast.Add, ast.Sub):
                    m = new(node)
                    m.args[i] = ast.BinOp(new(node.args[i]), op(), ast.Constant(1))
                    yield m, "off by one"
    elif isinstance(node, ast.Subscript):
        s = node.slice
        if isinstance(s, ast.Constant) and s.value == 0 and not isinstance(s.value, bool):
            m = new(node)
            m.slice = ast.UnaryOp(ast.USub(), ast.Constant(1))
            yield m, "first/last element"
        elif isinstance(s, ast.UnaryOp) and isinstance(s.op, ast.USub) and _is_one(s.operand):
            m = new(node)
            m.slice = ast.Constant(0)
            yield m, "first/last element"
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield ast.Constant(not value), "True/False"
        elif isinstance(value, int):
            options = [1] if value == 0 else [value + 1, value - 1]
            negated = isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub)
            for v in options:
                if negated and v == 0:
                    continue  # -0 is the same as dropping the minus sign... of 0; keep noise down
                yield ast.Constant(v), "constant"
        elif isinstance(value, float):
            options = [1.0] if value == 0.0 else [value * 2, value / 2]
            for v in options:
                yield ast.Constant(v), "constant"


def shorten(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    half = (width - 3) // 2
    return text[:half] + "..." + text[-half:]


def _needs_parens(text: str) -> bool:
    return not (text.isidentifier() or (text[:1].isdigit() and all(ch.isalnum() or ch in "._" for ch in text)))


def python_source(source: str) -> str:
    """Cell source as plain Python (IPython magics turned into calls), same line numbers."""
    try:
        parse_python(source)
        return source
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with the course
        return source
    return TransformerManager().transform_cell(source)


def mutants_of_cell(source: str, grade_id: str = "cell") -> list[Mutant]:
    """Every single-edit mutant of the code inside the cell's BEGIN/END SOLUTION regions."""
    regions = solution_regions(source)
    if not regions:
        return []
    source = python_source(source)
    try:
        tree = parse_python(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    skip_lines = {i + 1 for i, text in enumerate(lines) if "#" in text and SKIP_PRAGMA in text.split("#", 1)[1]}
    raw = source.encode()
    starts = [0]
    for piece in raw.splitlines(keepends=True):
        starts.append(starts[-1] + len(piece))

    parents: dict[ast.AST, ast.AST] = {}
    in_fstring: set[ast.AST] = set()
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
            if isinstance(node, ast.JoinedStr) or node in in_fstring:
                in_fstring.add(child)

    def inside(node: ast.AST) -> bool:
        return any(lo <= node.lineno and node.end_lineno <= hi for lo, hi in regions)

    out: list[Mutant] = []
    seen = {source}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or node.end_lineno is None or node in in_fstring:
            continue
        if not inside(node) or node.lineno in skip_lines:
            continue
        parent = parents.get(node)
        if isinstance(node, ast.Constant) and isinstance(parent, ast.Expr):
            continue  # a docstring or a bare literal
        for replacement, kind in _variants(node, parent):
            new_text = ast.unparse(replacement)
            old_text = ast.get_source_segment(source, node) or ast.unparse(node)
            if isinstance(node, ast.expr) and _needs_parens(new_text):
                new_text = f"({new_text})"
            a = starts[node.lineno - 1] + len(lines[node.lineno - 1].encode()[:node.col_offset])
            b = starts[node.end_lineno - 1] + len(lines[node.end_lineno - 1].encode()[:node.end_col_offset])
            mutated = (raw[:a] + new_text.encode() + raw[b:]).decode()
            if mutated in seen:
                continue
            try:
                parse_python(mutated)
            except SyntaxError:
                continue
            seen.add(mutated)
            if isinstance(node, ast.BinOp):
                line = node.right.lineno
            elif isinstance(node, ast.Compare):
                line = node.comparators[0].lineno
            else:
                line = node.lineno
            shown_new = ast.unparse(replacement) if not isinstance(replacement, ast.Pass) else "(removed)"
            description = f"{kind}: `{shorten(old_text)}` -> `{shorten(shown_new)}`"
            out.append(Mutant(grade_id=grade_id, line=line, description=description, source=mutated))
    out.sort(key=lambda m: m.line)  # stable: same line keeps the walk order
    return out


# -- notebooks -----------------------------------------------------------------------------
def cell_role(cell) -> str:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("solution"):
        return "solution"
    if meta.get("grade"):
        return "graded"
    return "code"


def _cell_file_lines(nb, path: Path | None) -> dict[int, int]:
    """Where each code cell starts in the .py source (jupytext percent), when it can be found."""
    if path is None or path.suffix != ".py" or not path.is_file():
        return {}
    text = path.read_text()
    found: dict[int, int] = {}
    pos = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        at = text.find(cell.source, pos)
        if at < 0:
            continue
        found[index] = text.count("\n", 0, at) + 1
        pos = at + len(cell.source)
    return found


def notebook_mutants(nb, path: Path | None = None) -> list[Mutant]:
    """The mutants of every (autograded) solution cell of an instructor notebook."""
    file_lines = _cell_file_lines(nb, path)
    out: list[Mutant] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell_role(cell) != "solution":
            continue
        meta = cell.metadata["nbgrader"]
        if meta.get("grade"):
            continue  # a manually graded answer: no tests to catch anything
        for m in mutants_of_cell(cell.source, meta.get("grade_id", f"cell-{index}")):
            m.cell_index = index
            if index in file_lines:
                m.file_line = file_lines[index] + m.line - 1
            out.append(m)
    return out
