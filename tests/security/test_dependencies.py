"""The dependencies skate's guarantees rest on are required at versions that keep them."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement

from conftest import REPO


def test_torch_is_required_at_a_version_whose_weights_only_load_holds() -> None:
    """torch.load(weights_only=True) can be made to run code before torch 2.6 (CVE-2025-32434)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    torch = next(Requirement(line) for line in project["dependencies"] if Requirement(line).name == "torch")
    assert not torch.specifier.contains("2.5.1") and torch.specifier.contains("2.6.0")
