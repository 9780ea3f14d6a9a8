"""Every example in examples/ is servable by `perdure dev FILE` (its `services` list)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers.processes import ROOT

from perdure.cli.server import load_services
from perdure.sdk.discovery import build_manifest

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_perdure_dev_finds_the_services_of_every_example(path: Path) -> None:
    services = load_services(path)
    assert services
    for definition in services:
        definition.check()
    manifest = build_manifest(services, min_protocol_version=5, max_protocol_version=6)
    assert {s.name for s in manifest.services} == {d.name for d in services}
