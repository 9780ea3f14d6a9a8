"""docs/orchestration.md works as written: its ```bash blocks run, in order, against a real
server with the orchestration services, and print what the `# →` lines under them say.

Each `# → text` line is one expected line of output; `…` in it matches anything. The doc uses
the default ports (ingress 8080, admin 9070); the test points them at its own server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.helpers.processes import ROOT
from tests.integration.orchestration.conftest import Orchestra

pytestmark = pytest.mark.interop

DOC = ROOT / "docs" / "orchestration.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXPECT = "# → "
# curl prints a body without a final newline; end every answer on its own line (blank lines
# are ignored) so that each one can be compared with its `# →` line.
CURL_ON_ITS_OWN_LINE = 'set -u\ncurl() { command curl "$@"; echo; }\n'


def blocks(text: str) -> list[str]:
    return [m.group(1) for m in BLOCK.finditer(text)]


def expected_lines(script: str) -> list[str]:
    return [
        ln.strip()[len(EXPECT) :] for ln in script.splitlines() if ln.strip().startswith(EXPECT)
    ]


def matches(pattern: str, line: str) -> bool:
    parts = [re.escape(p) for p in pattern.split("…")]
    return re.fullmatch(".*".join(parts), line) is not None


def localize(script: str, orch: Orchestra) -> str:
    return script.replace("localhost:8080", orch.server.ingress.removeprefix("http://")).replace(
        "localhost:9070", orch.server.admin.removeprefix("http://")
    )


def run_doc(orch: Orchestra, doc: Path = DOC) -> tuple[list[str], list[str]]:
    script = "\n".join(blocks(doc.read_text()))
    result = subprocess.run(
        ["bash", "-c", CURL_ON_ITS_OWN_LINE + localize(script, orch)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return expected_lines(script), [ln for ln in result.stdout.splitlines() if ln.strip()]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_orchestration_doc_examples_print_what_they_say(fresh: Orchestra) -> None:
    wanted, got = run_doc(fresh)
    assert wanted, "the doc has no expectations"
    assert len(got) == len(wanted), "\n".join(got)
    for pattern, line in zip(wanted, got, strict=True):
        assert matches(pattern, line), f"expected {pattern!r}\n     got {line!r}"
