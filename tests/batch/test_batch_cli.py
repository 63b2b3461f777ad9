"""The batch commands' usage errors: one line naming the bad value and the fix, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterflow_cli.app import main
from tests.conftest import unique_pipeline, write_manifest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2024-13-01"], "meterflow: --from '2024-13-01' is not a date; write YYYY-MM-DD, e.g. 2016-10-01"),
        (["--from", "2024-05-03", "--to", "2024-05-01"],
         "meterflow: --from 2024-05-03 is after --to 2024-05-01; swap them"),
        (["--as-of", "yesterday"], "meterflow: --as-of 'yesterday' is neither a snapshot id (digits) nor a time; "
                                   "write e.g. 4823904513 or 2016-10-15T08:00:00+02:00"),
        (["--schedule", "--from", "2024-05-01"],
         "meterflow: Invalid value for --schedule: --schedule recomputes the default range; drop --from/--to/--as-of "
         "(see `meterflow batch --help`)"),
    ],
)  # fmt: skip
def test_bad_batch_options_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    manifest = write_manifest(unique_pipeline("water-meters"), tmp_path)
    assert main(["batch", "-f", str(manifest), *args]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_lake_expire_rejects_a_bad_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(unique_pipeline("water-meters"), tmp_path)
    assert main(["lake", "expire", "-f", str(manifest), "--older-than", "a week"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meterflow: Invalid value for --older-than: 'a week' is not a duration")
    assert err.count("\n") == 1
