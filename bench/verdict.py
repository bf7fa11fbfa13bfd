"""One line per measured target, in a form `make bench` collects into the report's summary:

    TARGET | duplicate check p95 | 27.3 ms | ≤ 30 ms | PASS

Scripts call `check` for each figure that has a target and end with `sys.exit(exit_code())`,
so a missed target is also a failed script."""

from __future__ import annotations

_results: list[bool] = []


def check(label: str, value: float, limit: float, unit: str, *, at_least: bool = False) -> bool:
    ok = value >= limit if at_least else value <= limit
    sign = "≥" if at_least else "≤"
    print(
        f"TARGET | {label} | {value:,.2f} {unit} | {sign} {limit:,g} {unit} | "
        f"{'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    _results.append(ok)
    return ok


def exit_code() -> int:
    return 0 if all(_results) else 1
