"""The gate's Data Docs site: GX is configured with ledgerlake.quality.data_docs (compiled templates kept for the
process, the files a build writes recorded for publishing), also in a folder set up before."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jinja2

from ledgerlake.config import PROJECT_ROOT
from ledgerlake.lake import Lake
from ledgerlake.quality import validate_partition

from .partitions import INTERVAL, ledger_rows, write_ledger


def test_a_folder_set_up_before_is_reconfigured_and_its_page_published(lake: Lake, tmp_path: Path) -> None:
    from ledgerlake.quality import expectations

    docs = (tmp_path / "data_docs").resolve()
    context = expectations._context(docs)
    old = {"class_name": "SiteBuilder", "store_backend": {"class_name": "TupleFilesystemStoreBackend"}}
    old["store_backend"]["base_directory"] = str(docs)  # type: ignore[index]
    context.update_data_docs_site(expectations.SITE_NAME, old)
    del expectations._contexts[docs]  # as the next process finds the folder
    write_ledger(lake, ledger_rows("pacifica"))

    outcome = validate_partition(lake, "pacifica", "acct-1", INTERVAL, data_docs_dir=docs)

    assert outcome.passed, outcome.report()
    assert outcome.data_docs_local is not None and outcome.data_docs_uri is not None
    key = outcome.data_docs_uri.removeprefix(f"s3://{lake.settings.bucket}/")
    assert lake.get_bytes(key) == outcome.data_docs_local.read_bytes()
    assert lake.get_bytes("data_docs/index.html") == (docs / "index.html").read_bytes()
    sites = expectations._context(docs).config.data_docs_sites
    assert sites[expectations.SITE_NAME] == expectations._site_config(docs)


def test_compiled_templates_follow_their_source() -> None:
    from ledgerlake.quality.data_docs import _TEMPLATES

    sources = {"page.j2": "one {{ x }}"}
    loader = jinja2.DictLoader(sources)
    compiled: list[str] = []

    def environment() -> jinja2.Environment:
        env = jinja2.Environment(loader=loader, bytecode_cache=_TEMPLATES)
        compile_ = env.compile

        def counting(source: str, *args: Any, **kwargs: Any) -> Any:
            compiled.append(source)
            return compile_(source, *args, **kwargs)

        env.compile = counting  # type: ignore[method-assign,assignment]
        return env

    assert environment().get_template("page.j2").render(x=1) == "one 1"
    assert environment().get_template("page.j2").render(x=2) == "one 2"
    sources["page.j2"] = "two {{ x }}"
    assert environment().get_template("page.j2").render(x=3) == "two 3"
    assert compiled == ["one {{ x }}", "two {{ x }}"]  # a new environment reuses the compiled template


def test_great_expectations_is_imported_before_the_folder_lock(lake: Lake, tmp_path: Path) -> None:
    """Parallel validate tasks share the folder's lock; an import (5-7 s) under it made each wait for the others'."""
    write_ledger(lake, ledger_rows("pacifica"))
    child = textwrap.dedent(
        """
        import contextlib, json, sys
        from pathlib import Path
        from ledgerlake.lake import Lake, S3Settings
        from ledgerlake.quality import expectations, validate_partition
        from tests.quality.partitions import INTERVAL

        imported_at_lock = []
        real_lock = expectations._folder_lock

        @contextlib.contextmanager
        def recording_lock(docs):
            imported_at_lock.append("great_expectations" in sys.modules)
            with real_lock(docs):
                yield

        expectations._folder_lock = recording_lock
        assert "great_expectations" not in sys.modules
        lake = Lake(S3Settings(**json.loads(sys.argv[1])))
        outcome = validate_partition(lake, "pacifica", "acct-1", INTERVAL, data_docs_dir=Path(sys.argv[2]))
        print(json.dumps({"passed": outcome.passed, "imported_at_lock": imported_at_lock}))
        """
    )
    settings = json.dumps(dataclasses.asdict(lake.settings))
    done = subprocess.run(
        [sys.executable, "-c", child, settings, str(tmp_path / "data_docs")],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"passed": True, "imported_at_lock": [True]}
