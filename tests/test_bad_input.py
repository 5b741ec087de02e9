"""The bad-input battery (tests/bad_inputs.py): every kind of wrong setting or file ends with
exactly one `error:` line naming it, a non-zero exit, no traceback, nothing left behind."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bad_inputs import CASES
from conftest import made_once

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def results(tmp_path_factory) -> dict[str, dict]:
    """The battery's results, run once per test session (~100 s) whatever worker asks."""

    def battery(work: Path) -> dict:
        res = subprocess.run([sys.executable, str(HERE / "bad_inputs.py"), str(work)],
                             capture_output=True, text=True, timeout=1200)
        assert res.returncode == 0, res.stderr[-3000:]
        return {c["id"]: c["result"] for c in json.loads((work / "results.json").read_text())}

    return made_once(tmp_path_factory, "bad_input_battery", battery)


def test_the_battery_covers_sixty_kinds_and_every_entry_point():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert {c.entry for c in CASES} == {"train", "evaluate", "predict", "report", "compare"}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_is_refused_in_one_line(case, results):
    r = results[case.id]
    assert r["code"] not in (0, -1), r["stderr_tail"]
    assert not r["traceback"], r["stderr_tail"]
    (line,) = r["error_lines"] or [r["stderr_tail"]]
    for needle in r["needles"]:
        assert needle in line, line
    assert r["left_behind"] == [] and r["temp_files"] == []
