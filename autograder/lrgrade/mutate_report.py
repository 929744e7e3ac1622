"""The mutation check's results and how they are printed (see lrgrade.mutate)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .mutants import SKIP_PRAGMA, shorten


# -- results -------------------------------------------------------------------------------
@dataclass
class MutantResult:
    grade_id: str
    line: int
    file_line: int | None
    description: str
    caught: bool
    caught_by: str | None     # grade_id of the cell that failed
    reason: str               # why it was caught (the error), or why it survived
    source: str = field(repr=False, default="")


@dataclass
class NotebookReport:
    assignment: str
    path: str | None
    results: list[MutantResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # the harness cannot be trusted here
    notes: list[str] = field(default_factory=list)    # e.g. an ungraded cell that raises
    seconds: float = 0.0
    cached: bool = False  # the report of an earlier run with the same inputs (lrgrade.mutate.cache_key)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def caught(self) -> int:
        return sum(r.caught for r in self.results)

    @property
    def share(self) -> float:
        return self.caught / self.total if self.total else 1.0

    @property
    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if not r.caught]


@dataclass
class MutationReport:
    notebooks: list[NotebookReport]
    min_share: float  # the bar: the share of mutants that must be caught

    @property
    def total(self) -> int:
        return sum(n.total for n in self.notebooks)

    @property
    def caught(self) -> int:
        return sum(n.caught for n in self.notebooks)

    @property
    def share(self) -> float:
        return self.caught / self.total if self.total else 1.0

    @property
    def survivors(self) -> list[tuple[str, MutantResult]]:
        return [(n.assignment, r) for n in self.notebooks for r in n.survivors]

    @property
    def errors(self) -> list[str]:
        return [f"{n.assignment}: {e}" for n in self.notebooks for e in n.errors]

    @property
    def ok(self) -> bool:
        return not self.errors and self.share >= self.min_share

    def to_dict(self) -> dict:
        return {"total": self.total, "caught": self.caught, "share": self.share,
                "min_share": self.min_share, "ok": self.ok, "errors": self.errors,
                "notebooks": [{**{k: v for k, v in asdict(n).items() if k != "results"},
                               "total": n.total, "caught": n.caught, "share": n.share,
                               "results": [{k: v for k, v in asdict(r).items() if k != "source"}
                                           for r in n.results]}
                              for n in self.notebooks]}


def _where(nb: NotebookReport, r: MutantResult) -> str:
    if r.file_line is not None and nb.path:
        return f"{Path(nb.path).name}:{r.file_line}"
    return f"{r.grade_id} line {r.line}"


def format_survivors(report: MutationReport) -> str:
    lines = []
    for nb in report.notebooks:
        for r in nb.survivors:
            lines.append(f"{nb.assignment}  {r.grade_id}  {_where(nb, r)}  {r.description}")
    return "\n".join(lines)


def format_report(report: MutationReport, verbose: bool = False) -> str:
    out = ["mutation check: do the graded tests catch a small bug in each solution?"]
    for nb in report.notebooks:
        out.append(f"{nb.assignment}: {nb.total} mutants, {nb.caught} caught ({nb.share:.1%}) "
                   + ("(from the cache: nothing it depends on changed)" if nb.cached else f"in {nb.seconds:.0f} s"))
        for e in nb.errors:
            out.append(f"  ERROR  {e}")
        for note in nb.notes:
            out.append(f"  note: {note}")
        for r in nb.results:
            if not r.caught:
                out.append(f"  survived  {r.grade_id:<24} {_where(nb, r):<28} {r.description}")
                if verbose and r.reason:
                    out.append(f"            ({r.reason})")
            elif verbose:
                out.append(f"  caught    {r.grade_id:<24} {_where(nb, r):<28} {r.description}"
                           f"  <- {r.caught_by}: {shorten(r.reason, 90)}")
    verdict = "ok" if report.ok else ("HARNESS ERRORS" if report.errors else "below the bar")
    out.append(f"total: {report.total} mutants, {report.caught} caught ({report.share:.1%}); "
               f"bar {report.min_share:.0%}: {verdict}")
    if report.survivors:
        out.append("Each survivor is a weak test (add a case that tells the two versions apart) or an "
                   f"equivalent mutant (mark its line `# {SKIP_PRAGMA}`).")
    return "\n".join(out)
