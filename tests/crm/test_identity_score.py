"""The duplicate check (查重) scored on the shared labelled set: import base.csv, dry-run
probes.csv with JSON output, and run the shared scorer on the result (see
shared/data/README.md for the targets)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from crm.models import Customer

# The `shared` folder next to the repository root.
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
DATA = SHARED / "data" / "identity-dev"
SCORER = SHARED / "tools" / "score_identity.py"

TARGETS = {"block_precision": 0.995, "recall": 0.97, "hard_recall": 0.90}
MAX_FALSE_ALARM = 0.02


@pytest.mark.slow
@pytest.mark.django_db
def test_duplicate_check_meets_the_targets_on_the_labelled_set(tmp_path: Path) -> None:
    if not (DATA / "base.csv").exists() or not SCORER.exists():
        pytest.skip(f"labelled set or scorer not found next to the repository ({SHARED})")
    call_command("import_customers", str(DATA / "base.csv"), stdout=io.StringIO())
    assert Customer.objects.filter(external_ref__startswith="B").count() == 800

    out = io.StringIO()
    call_command(
        "import_customers", str(DATA / "probes.csv"), "--dry-run", "--format=json", stdout=out
    )
    result = tmp_path / "result.json"
    result.write_text(out.getvalue(), encoding="utf-8")
    assert not Customer.objects.filter(external_ref__startswith="P").exists()  # a dry run

    scored = subprocess.run(
        [sys.executable, str(SCORER), str(DATA / "probes.csv"), str(result)],
        capture_output=True,
        text=True,
        check=False,
    )
    summary = scored.stdout.strip().splitlines()[-1]
    print(scored.stdout)  # the per-kind lines, for `pytest -s`
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert summary.startswith("PASS"), summary
    figures = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", summary)}
    for name, target in TARGETS.items():
        assert figures[name] >= target, summary
    assert figures["false_alarm"] <= MAX_FALSE_ALARM, summary
    assert figures["missing_rows"] == 0, summary
