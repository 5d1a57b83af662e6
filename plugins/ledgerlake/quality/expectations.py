"""Runs a suite with Great Expectations 1.x and builds its Data Docs in a local folder.

The GX project is a file context in `<docs_dir>/.gx`; its one Data Docs site ("ledgerlake") is `<docs_dir>`
itself, so `<docs_dir>/index.html` is the local Data Docs; the site's store and views are those of
ledgerlake.quality.data_docs (templates compiled once per process, written files recorded). Great Expectations
is imported here lazily (it costs several seconds), and one context per folder is kept for the life of the
process. A file lock serializes GX work between processes sharing the folder (parallel mapped tasks on one
worker), since GX rewrites its config and the index page without locking.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ledgerlake.quality.suites import SuiteSpec

SITE_NAME = "ledgerlake"
DATA_DOCS_MODULE = "ledgerlake.quality.data_docs"  # the site's store and views
DATASOURCE_NAME = "ledgerlake"
BATCH_DEFINITION_NAME = "partition"
# Pages of the most recent validation results the index lists; bounds the index build as history grows.
INDEX_LIMIT = 500
# Enough distinct unexpected values to locate a few offending rows by value.
PARTIAL_UNEXPECTED = 20

_contexts: dict[Path, Any] = {}
# (docs folder, GX suite name) -> (the suite as the file gives it, its checkpoint as stored): re-adding an unchanged
# suite, validation definition and checkpoint on every run costs GX a quarter of a second comparing them.
_checkpoints: dict[tuple[Path, str], tuple[str, Any]] = {}
_thread_lock = threading.Lock()


class ExpectationRunError(RuntimeError):
    """Great Expectations could not run a suite; the message names the suite."""


@dataclass
class ExpectationRun:
    suite: SuiteSpec
    success: bool
    results: list[dict[str, Any]]  # one per expectation: type, kwargs, description, severity, success, result
    full: dict[str, Any]  # the suite validation result as JSON
    page: Path | None  # the Data Docs page of this validation
    changed_files: list[Path] = field(default_factory=list)  # Data Docs files (re)written by this run


@contextmanager
def _folder_lock(docs_dir: Path) -> Iterator[None]:
    docs_dir.mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(docs_dir / ".gx.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _import_gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.execution_engine.pandas_execution_engine as pandas_engine

    # GX fingerprints every in-memory batch with a full hash of the frame (seconds per million rows with
    # decimal columns). The lake's manifest sha256 already fingerprints the data, so the hash is switched off.
    pandas_engine.HASH_THRESHOLD = 0
    return gx


def _context(docs_dir: Path) -> Any:
    docs_dir = docs_dir.resolve()
    if docs_dir in _contexts:
        return _contexts[docs_dir]
    gx = _import_gx()
    context = gx.get_context(mode="file", project_root_dir=str(docs_dir / ".gx"))
    sites = dict(context.config.data_docs_sites or {})
    for name in list(sites):
        if name != SITE_NAME:
            context.delete_data_docs_site(name)  # the default local_site would build a second copy
    if SITE_NAME not in sites:
        context.add_data_docs_site(SITE_NAME, _site_config(docs_dir))
    elif sites[SITE_NAME] != _site_config(docs_dir):
        context.update_data_docs_site(SITE_NAME, _site_config(docs_dir))
    bars = context.variables.progress_bars  # a ProgressBarsConfig, or a dict once read back from the YAML
    flags = bars if isinstance(bars, dict) else vars(bars) if bars is not None else {}
    if flags.get("globally") is not False or flags.get("metric_calculations") is not False:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # tqdm bars would fill the task logs with "Calculating Metrics" lines
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        context.variables.save()
    _contexts[docs_dir] = context
    return context


def _site_config(docs_dir: Path) -> dict[str, Any]:
    page_view = {"module_name": DATA_DOCS_MODULE, "class_name": "PageView"}
    return {
        "class_name": "SiteBuilder",
        "store_backend": {
            "module_name": DATA_DOCS_MODULE,
            "class_name": "StoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": INDEX_LIMIT,
            "view": {"module_name": DATA_DOCS_MODULE, "class_name": "IndexPageView"},
        },
        "site_section_builders": {
            section: {"view": page_view} for section in ("expectations", "validations", "profiling")
        },
    }


def _batch_definition(context: Any, dataset: str) -> Any:
    try:
        source = context.data_sources.get(DATASOURCE_NAME)
    except Exception:
        source = context.data_sources.add_pandas(DATASOURCE_NAME)
    asset_name = dataset.replace("/", "_")
    try:
        asset = source.get_asset(asset_name)
    except Exception:
        asset = source.add_dataframe_asset(asset_name)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except Exception:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)


def build_gx_suite(spec: SuiteSpec) -> Any:
    """The GX suite of a suite file; an invalid expectation is an error, never silently dropped."""
    gx = _import_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    expectations = []
    for exp in spec.expectations:
        try:
            config = ExpectationConfiguration(
                type=exp["type"],
                kwargs=dict(exp["kwargs"]),
                meta=dict(exp.get("meta") or {}),
                description=exp.get("description"),
                severity=exp.get("severity", "critical"),
            )
            expectations.append(config.to_domain_obj())
        except Exception as exc:
            raise ExpectationRunError(
                f"{spec.path}: expectation {exp['type']} {exp['kwargs']} is invalid: {exc}"
            ) from None
    return gx.ExpectationSuite(name=spec.gx_name, expectations=expectations, meta={"source": spec.path.name})


def _add_checkpoint(context: Any, spec: SuiteSpec) -> Any:
    """Store the suite, its validation definition and its checkpoint (unchanged ones are left as they are)."""
    gx = _import_gx()
    from great_expectations.checkpoint import UpdateDataDocsAction

    # The checkpoint's add_or_update stores its validation definition and suite as well (once each).
    definition = gx.ValidationDefinition(
        name=spec.gx_name, data=_batch_definition(context, spec.dataset), suite=build_gx_suite(spec)
    )
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=spec.gx_name,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[SITE_NAME])],
            # BASIC still gives counts and partial unexpected values; SUMMARY adds index lists that GX builds
            # by filtering the whole frame once per expectation (seconds per million rows).
            result_format={"result_format": "BASIC", "partial_unexpected_count": PARTIAL_UNEXPECTED},
        )
    )


def run_suite(
    spec: SuiteSpec,
    frame: Any,
    parameters: dict[str, Any],
    run_name: str,
    docs_dir: Path,
) -> ExpectationRun:
    """Validate `frame` (a pandas DataFrame) against the suite, store the result and build its Data Docs page."""
    # Imported before taking the folder's lock: under it, parallel validate tasks of one worker each waited for
    # the others' 5-7 s import in turn (measured: six at once finished after 5, 11, 16, 21, 26 and 31 s).
    _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.exceptions.resource_freshness import ResourceFreshnessAggregateError

    from ledgerlake.quality import data_docs

    with _folder_lock(docs_dir):
        context = _context(docs_dir)
        data_docs.written.clear()
        key = (docs_dir.resolve(), spec.gx_name)
        as_given = json.dumps([spec.path.name, spec.expectations], sort_keys=True, default=str)
        cached = _checkpoints.get(key)
        checkpoint = cached[1] if cached is not None and cached[0] == as_given else _add_checkpoint(context, spec)
        _checkpoints[key] = (as_given, checkpoint)
        run = {
            "batch_parameters": {"dataframe": frame},
            "expectation_parameters": parameters,
            "run_id": RunIdentifier(run_name=run_name),
        }
        try:
            try:
                outcome = checkpoint.run(**run)
            except ResourceFreshnessAggregateError:
                # another process changed the stored suite or checkpoint: store this process's again
                checkpoint = _add_checkpoint(context, spec)
                _checkpoints[key] = (as_given, checkpoint)
                outcome = checkpoint.run(**run)
        except Exception as exc:
            raise ExpectationRunError(f"Great Expectations failed to run suite {spec.gx_name}: {exc}") from exc
        identifier, validation = next(iter(outcome.run_results.items()))
        page = None
        for site in context.get_docs_sites_urls(resource_identifier=identifier, site_name=SITE_NAME):
            url = site.get("site_url")
            if url and url.startswith("file://"):
                page = Path(unquote(urlparse(url).path))
        changed = sorted(set(data_docs.written))

    results = []
    for r in validation.results:
        config = r.expectation_config
        exception = (r.exception_info or {}).get("exception_message") if r.exception_info else None
        results.append(
            {
                "type": config.type,
                "kwargs": {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)},
                "description": config.description,
                "severity": str(getattr(config.severity, "value", config.severity)),
                "success": bool(r.success),
                "result": dict(r.result or {}),
                "exception": exception,
            }
        )
    return ExpectationRun(
        suite=spec,
        success=bool(validation.success),
        results=results,
        full=validation.to_json_dict(),
        page=page,
        changed_files=changed,
    )
