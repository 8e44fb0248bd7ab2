"""The audit's report for a person: one row per control, one column per host, as docker-bench
and InSpec give it, on screen and as a Markdown file an auditor can be handed.

Each audit's result arrives as a Result (from tests/audit/conftest.py). A control's cell on a
host is its worst result there: FAIL over exception over pass; a documented exception is an
audit that pytest.xfail()s with the reason it states.
"""

from dataclasses import dataclass

RANK = {"FAIL": 3, "exception": 2, "pass": 1, "skipped": 0}


@dataclass(frozen=True)
class Result:
    host: str
    control: str
    audit: str    # pytest's node id
    status: str   # one of RANK
    evidence: str = ""  # for a failure: the assertion's first lines; for an exception: its reason


def status_of(outcome: str, when: str, xfailed: bool) -> str | None:
    """A pytest report's status in the report, or None for the phases that say nothing
    (a passed setup or teardown)."""
    if outcome == "failed":
        return "FAIL"
    if xfailed:
        return "exception"
    if outcome == "skipped":
        return "skipped"
    return "pass" if when == "call" else None


def cells(results: list) -> tuple[list, list, dict]:
    """(hosts, controls, {(control, host): status}), each cell the worst result there."""
    hosts = sorted({r.host for r in results})
    controls = sorted({r.control for r in results})
    grid = {}
    for r in results:
        key = (r.control, r.host)
        if RANK[r.status] >= RANK.get(grid.get(key), -1):
            grid[key] = r.status
    return hosts, controls, grid


def table(results: list) -> list:
    """Lines of a fixed-width table: a row per control, a column per host."""
    hosts, controls, grid = cells(results)
    width = max([len("control"), *map(len, controls)])
    lines = ["  ".join(["control".ljust(width), *(h.ljust(9) for h in hosts)]).rstrip()]
    for control in controls:
        lines.append("  ".join([control.ljust(width), *(grid.get((control, h), "-").ljust(9) for h in hosts)]).rstrip())
    return lines


def markdown(results: list, title: str) -> str:
    """The same table, the totals, and the evidence of every failure and exception."""
    hosts, controls, grid = cells(results)
    counts = {s: sum(1 for r in results if r.status == s) for s in RANK}
    out = [f"# {title}", "",
           f"{counts['pass']} passed, {counts['FAIL']} failed, {counts['exception']} documented exceptions, "
           f"{counts['skipped']} not applicable; {len(hosts)} hosts, {len(controls)} controls.", "",
           "| control | " + " | ".join(hosts) + " |", "|---|" + "---|" * len(hosts)]
    out += [f"| {c} | " + " | ".join(grid.get((c, h), "-") for h in hosts) + " |" for c in controls]
    for status, heading in (("FAIL", "Failures"), ("exception", "Documented exceptions")):
        shown = [r for r in results if r.status == status]
        if shown:
            out += ["", f"## {heading}", ""]
            for r in shown:
                out += [f"### {r.control} on {r.host}", "", f"`{r.audit}`", "", "```", r.evidence.strip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"
