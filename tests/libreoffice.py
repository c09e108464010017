"""Drive LibreOffice headless as a test oracle (see ../shared/LIBREOFFICE.md).

Every call uses its own throw-away profile, forces recalculation on load (LibreOffice
otherwise trusts cached formula values), runs under a timeout in its own process group,
and checks the expected output exists (soffice exits 0 even when it converted nothing).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")

_MISSING = "LibreOffice not installed: apt-get install -y libreoffice-calc-nogui fonts-wqy-zenhei"
# In CI (XL_EXPENSE_REQUIRE_ORACLES set) a missing LibreOffice fails instead of skipping.
needs_soffice = pytest.mark.skipif(
    SOFFICE is None and not os.environ.get("XL_EXPENSE_REQUIRE_ORACLES"), reason=_MISSING
)

_RECALC_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""

CSV_ALL_SHEETS = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"


def convert(path: Path | list[Path], target: str, outdir: Path, timeout: int = 180) -> list[Path]:
    """Convert ``path`` (or several files, in one soffice start) to ``target`` in ``outdir``.

    ``target`` is "xlsx", "pdf" or CSV_ALL_SHEETS. Returns the files produced (for CSV of all
    sheets: one per sheet, ``<stem>-<sheet>.csv``).
    """
    paths = [str(p) for p in path] if isinstance(path, list) else [str(path)]
    if SOFFICE is None:
        if os.environ.get("XL_EXPENSE_REQUIRE_ORACLES"):
            pytest.fail(f"required in CI: {_MISSING}")
        pytest.skip(_MISSING)
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as profile:
        user = Path(profile, "user")
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(_RECALC_PROFILE, encoding="utf-8")
        before = set(outdir.iterdir())
        cmd = [
            "setsid", "timeout", "-k", "10", str(timeout), SOFFICE,
            f"-env:UserInstallation=file://{profile}",
            "--headless", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
            "--convert-to", target, "--outdir", str(outdir), *paths,
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "HOME": profile})
        try:
            out, _ = proc.communicate(timeout=timeout + 20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    produced = sorted(set(outdir.iterdir()) - before)
    assert produced, f"LibreOffice produced nothing for {path}: {out.decode(errors='replace')}"
    return produced
