"""The Great Expectations classes the gate's Data Docs site is configured with (ledgerlake.quality.expectations).

GX builds a new site, with new Jinja environments, for every Data Docs build, so it would compile each template
again every time (a quarter of a second per validation): the compiled templates are kept for the process. The
site's store notes the files it writes, so the gate publishes those without listing the whole folder, which grows
with every validation. GX imports this module when it builds a site (it imports GX itself, which costs seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from great_expectations.data_context.store import TupleFilesystemStoreBackend
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView

# Files the site wrote, in order; the caller clears it before a build (runs are serialized by the folder lock).
written: list[Path] = []


class StoreBackend(TupleFilesystemStoreBackend):
    """GX's local folder backend, noting each file it writes in `written`."""

    def _set(self, key: Any, value: Any, **kwargs: Any) -> Any:
        path = super()._set(key, value, **kwargs)
        written.append(Path(path))
        return path


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates by name and file for the process; a template whose source changed compiles again."""

    def __init__(self) -> None:
        self._code: dict[str, tuple[str, Any]] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        found = self._code.get(bucket.key)
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = (bucket.checksum, bucket.code)


_TEMPLATES = _CompiledTemplates()


class _CachedTemplates:
    env: jinja2.Environment

    # GX passes the constructor the arguments it names, so they are spelled out.
    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)  # type: ignore[call-arg]
        self.env.bytecode_cache = _TEMPLATES


class PageView(_CachedTemplates, DefaultJinjaPageView):
    """Validation result and suite pages."""


class IndexPageView(_CachedTemplates, DefaultJinjaIndexPageView):
    """The index page."""
