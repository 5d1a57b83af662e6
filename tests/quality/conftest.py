"""Fixtures of the quality-gate tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local Data Docs folder (one GX file context) for the whole session: GX set-up is paid once."""
    yield tmp_path_factory.mktemp("data_docs")
