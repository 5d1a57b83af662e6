"""The docker-compose deployment, checked without a Docker engine (there is none here).

The file is validated against the Compose specification's JSON schema (include/compose/compose-spec.json),
then checked for what the schema cannot see: the services the deployment needs, dependencies and health
checks that can actually be satisfied, one Airflow image and configuration, the Celery/Redis/PostgreSQL
settings, the project mounted into every Airflow container, no literal secret, an .env.example that lists
every variable, and a Dockerfile that installs from uv.lock on the locked Airflow version.

Each check is a function returning a list of problems; `test_check_catches_a_broken_copy` runs every check
on a deliberately broken copy, so none of them can pass vacuously.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from ledgerlake.schema import VENUES

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
ONE_SHOT_JOBS = ("airflow-init", "minio-init")
REQUIRED_SERVICES = (*AIRFLOW_SERVICES, "postgres", "redis", "minio", "minio-init", "venue-sandbox")
PROJECT_MOUNTS = {
    "./dags": "/opt/airflow/dags",
    "./plugins": "/opt/airflow/plugins",
    "./include": "/opt/airflow/include",
}
SANDBOX_PORT_BASE = 9100

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|PASSPHRASE|FERNET|ACCESS_KEY|API_KEY|PRIVATE_KEY|JWT|_AUTH$", re.I
)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, ${NAME:+alt}; $$ escapes a $.
REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
FULL_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?+][^}]*)?\}")
MASK = "§REF§"


@dataclasses.dataclass(frozen=True)
class Deployment:
    compose_text: str
    doc: dict[str, Any]
    env_example: str
    dockerfile: str
    dockerignore: str
    init_script: str
    lock: str
    makefile: str
    pyproject: str


def load_deployment() -> Deployment:
    compose_text = (ROOT / "docker-compose.yaml").read_text()
    return Deployment(
        compose_text=compose_text,
        doc=yaml.safe_load(compose_text),
        env_example=(ROOT / ".env.example").read_text(),
        dockerfile=(ROOT / "include/docker/Dockerfile").read_text(),
        dockerignore=(ROOT / "include/docker/Dockerfile.dockerignore").read_text(),
        init_script=(ROOT / "include/docker/airflow-init.sh").read_text(),
        lock=(ROOT / "uv.lock").read_text(),
        makefile=(ROOT / "Makefile").read_text(),
        pyproject=(ROOT / "pyproject.toml").read_text(),
    )


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return load_deployment()


# --- helpers ---------------------------------------------------------------------------------------------


class InterpolationError(ValueError):
    def __init__(self, missing: set[str]) -> None:
        super().__init__(f"required variables unset or empty: {sorted(missing)}")
        self.missing = missing


def interpolate(doc: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution over every string of the parsed file (comments are not interpolated);
    raises with every ${VAR:?} / ${VAR?} that env leaves unset."""
    missing: set[str] = set()

    def substitute(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        value: str | None = env.get(name)
        set_nonempty = bool(value)
        if op in (":?", "?") and (value is None or (op == ":?" and not set_nonempty)):
            missing.add(name)
            return ""
        if op == ":-":
            return value or arg
        if op == "-":
            return arg if value is None else value
        if op == ":+":
            return arg if set_nonempty else ""
        if op == "+":
            return "" if value is None else arg
        return value or ""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {walk(k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}", substitute, node)
        return node

    result = walk(doc)
    if missing:
        raise InterpolationError(missing)
    return result


def parse_env_file(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            env[name.strip()] = value.strip()
    return env


def strings(node: Any) -> Iterator[str]:
    """Every string of the parsed file, mapping keys included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def referenced_variables(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Variable name -> the operators it is referenced with ('' for a plain ${VAR})."""
    refs: dict[str, set[str]] = {}
    for text in strings(doc):
        for m in REF.finditer(text):
            refs.setdefault(m.group(1), set()).add(m.group(2) or "")
    return refs


def scalars(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(path, key, value) for every scalar; key is the mapping key or None for list items."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                yield from scalars(value, f"{path}.{key}")
            else:
                yield f"{path}.{key}", key, value
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict | list):
                yield from scalars(value, f"{path}[{i}]")
            else:
                yield f"{path}[{i}]", None, value


def services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc.get("services") or {}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable") and check.get("test") != ["NONE"]


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) in ("no", "on-failure") and not has_healthcheck(service)


def locked_version(lock_text: str, package: str) -> str | None:
    for pkg in tomllib.loads(lock_text).get("package", []):
        if pkg["name"] == package:
            return str(pkg["version"])
    return None


def sample_env(d: Deployment) -> dict[str, str]:
    """.env.example with a distinct stand-in for every empty value (what a user's .env looks like)."""
    return {name: value or f"sample-{name.lower()}" for name, value in parse_env_file(d.env_example).items()}


# --- checks: each returns a list of problems ------------------------------------------------------------


@functools.cache
def compose_schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "include/compose/compose-spec.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_problems(d: Deployment) -> list[str]:
    validator = compose_schema_validator()
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(d.doc)]


def service_set_problems(d: Deployment) -> list[str]:
    return [f"service {name} is missing" for name in REQUIRED_SERVICES if name not in services(d.doc)]


def dependency_problems(d: Deployment) -> list[str]:
    problems = []
    svcs = services(d.doc)
    for name, svc in svcs.items():
        for target, condition in depends_on(svc).items():
            if target not in svcs:
                problems.append(f"{name} depends on {target}, which is not a service")
            elif condition == "service_healthy" and not has_healthcheck(svcs[target]):
                problems.append(f"{name} waits for {target} to be healthy, but {target} has no health check")
            elif condition == "service_completed_successfully" and not is_one_shot(svcs[target]):
                problems.append(f"{name} waits for {target} to complete, but {target} is not a one-shot job")
    # No cycle: compose could never start the services on it.
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done" or name not in svcs:
            return
        if state.get(name) == "active":
            problems.append(f"dependency cycle: {' -> '.join([*trail, name])}")
            return
        state[name] = "active"
        for target in depends_on(svcs[name]):
            visit(target, [*trail, name])
        state[name] = "done"

    for name in svcs:
        visit(name, [])
    return problems


def lifecycle_problems(d: Deployment) -> list[str]:
    problems = []
    svcs = services(d.doc)
    for name, svc in svcs.items():
        if name in ONE_SHOT_JOBS:
            if not is_one_shot(svc):
                problems.append(f"{name} is a one-shot job: restart must be 'no' and it has no health check")
        else:
            if not has_healthcheck(svc):
                problems.append(f"{name} runs for good but has no health check")
            if svc.get("restart") not in ("always", "unless-stopped"):
                problems.append(f"{name} runs for good but is not restarted (restart: {svc.get('restart')})")
    expected = {
        "airflow-init": {"postgres": "service_healthy", "redis": "service_healthy"},
        "airflow-worker": {"airflow-apiserver": "service_healthy", "minio-init": "service_completed_successfully"},
        "minio-init": {"minio": "service_healthy"},
    }
    for name in AIRFLOW_SERVICES:
        if name != "airflow-init":
            expected.setdefault(name, {})["airflow-init"] = "service_completed_successfully"
    for name, wanted in expected.items():
        actual = depends_on(svcs.get(name, {}))
        problems += [f"{name} must wait for {t} ({c})" for t, c in wanted.items() if actual.get(t) != c]
    return problems


def airflow_common_problems(d: Deployment) -> list[str]:
    common = d.doc.get("x-airflow-common")
    if not isinstance(common, dict):
        return ["no x-airflow-common block"]
    problems = []
    common_env = environment(common)
    for name in AIRFLOW_SERVICES:
        svc = services(d.doc).get(name, {})
        for key in ("image", "build", "user", "volumes"):
            if svc.get(key) != common.get(key):
                problems.append(f"{name}.{key} differs from x-airflow-common")
        env = environment(svc)
        problems += [f"{name}: {k} differs from x-airflow-common" for k, v in common_env.items() if env.get(k) != v]
    return problems


def airflow_config_problems(d: Deployment) -> list[str]:
    problems = []
    svcs = services(d.doc)
    for name in AIRFLOW_SERVICES:
        env = environment(svcs.get(name, {}))
        get = env.get
        if get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
            problems.append(f"{name}: executor is {get('AIRFLOW__CORE__EXECUTOR')!r}, not CeleryExecutor")
        broker = re.fullmatch(r"redis://[^@]*@?([\w.-]+):6379/\d+", get("AIRFLOW__CELERY__BROKER_URL", ""))
        if not broker or broker.group(1) != "redis" or "redis" not in svcs:
            problems.append(f"{name}: Celery broker is not the redis service")
        db = re.fullmatch(
            r"postgresql\+psycopg2?://[^@]+@([\w.-]+)(:\d+)?/\w+", get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
        )
        if not db or db.group(1) != "postgres":
            problems.append(f"{name}: metadata database is not the postgres service (postgresql+psycopg)")
        if not get("AIRFLOW__CELERY__RESULT_BACKEND", "").startswith("db+postgresql"):
            problems.append(f"{name}: Celery result backend is not the metadata database")
        if get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") != "http://airflow-apiserver:8080/execution/":
            problems.append(f"{name}: workers are not pointed at the api-server's /execution/")
        auth = get("AIRFLOW__CORE__AUTH_MANAGER", "")
        if not auth.endswith(("FabAuthManager", "SimpleAuthManager")):
            problems.append(f"{name}: no auth manager with a login ({auth!r})")
        if get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "false").lower() == "true":
            problems.append(f"{name}: everyone is admin, the UI needs no login")
    api = svcs.get("airflow-apiserver", {})
    if "8080" not in " ".join(map(str, api.get("ports", []))):
        problems.append("airflow-apiserver does not publish port 8080")
    if "http://localhost:8080/api/v2/version" not in (api.get("healthcheck") or {}).get("test", []):
        problems.append("airflow-apiserver's health check is not GET /api/v2/version on 8080")
    return problems


def mount_problems(d: Deployment) -> list[str]:
    problems = []
    for name in AIRFLOW_SERVICES:
        svc = services(d.doc).get(name, {})
        mounts = {}
        for volume in svc.get("volumes", []):
            source, target = (
                (volume.split(":")[:2]) if isinstance(volume, str) else (volume["source"], volume["target"])
            )
            mounts[target] = source
        for source, target in PROJECT_MOUNTS.items():
            if mounts.get(target) != source:
                problems.append(f"{name} does not mount {source} at {target}")
        if environment(svc).get("LEDGERLAKE_INCLUDE_DIR") != PROJECT_MOUNTS["./include"]:
            problems.append(f"{name}: LEDGERLAKE_INCLUDE_DIR is not the mounted include/")
    problems += [f"{src} does not exist in the repository" for src in PROJECT_MOUNTS if not (ROOT / src).is_dir()]
    return problems


def secret_problems(d: Deployment) -> list[str]:
    """Every password/secret/key-looking value is a ${...} reference; nothing else can hold a credential."""
    problems = []
    for path, key, value in scalars(d.doc):
        text = "" if value is None else str(value)
        masked = re.sub(FULL_REF, MASK, text).replace("$$", "$")
        if key is not None and SECRET_NAME.search(str(key)) and not FULL_REF.fullmatch(text):
            problems.append(f"{path}: literal value for a secret")
        for m in re.finditer(r"://[^\s/@:]*:([^\s/@]*)@", masked):
            if m.group(1) != MASK:
                problems.append(f"{path}: password in a URL is not a ${{...}} reference")
        for m in re.finditer(r'"(\w*(?:password|secret|passphrase|token|api_key)\w*)"\s*:\s*"([^"]*)"', masked, re.I):
            if m.group(2) not in ("", MASK):
                problems.append(f"{path}: JSON field {m.group(1)} holds a literal")
        for m in REF.finditer(text):
            if SECRET_NAME.search(m.group(1)) and m.group(2) in (":-", "-", ":+", "+") and m.group(3):
                problems.append(f"{path}: {m.group(1)} has a literal default")
    for path, node in _lists(d.doc):
        for flag, arg in itertools.pairwise(node):
            is_secret_flag = isinstance(flag, str) and re.fullmatch(
                r"--?[\w-]*(pass|secret|token|key)[\w-]*", flag, re.I
            )
            if is_secret_flag and not (FULL_REF.fullmatch(str(arg)) or str(arg).startswith("$")):
                problems.append(f"{path}: {flag} is followed by a literal")
    return problems


def _lists(node: Any, path: str = "") -> Iterator[tuple[str, list[Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _lists(value, f"{path}.{key}")
    elif isinstance(node, list):
        yield path, node
        for i, value in enumerate(node):
            yield from _lists(value, f"{path}[{i}]")


def required_secret_problems(d: Deployment) -> list[str]:
    """Compose refuses to start without each secret: ${VAR:?...}, except venue API keys (may start empty)."""
    venue_credential = re.compile(
        rf"LEDGERLAKE_({'|'.join(v.upper() for v in VENUES)})_(API_KEY|API_SECRET|PASSPHRASE)"
    )
    problems = []
    for name, ops in referenced_variables(d.doc).items():
        if SECRET_NAME.search(name) and not venue_credential.fullmatch(name) and ops != {":?"}:
            problems.append(f"{name} is not required everywhere it is used (${{{name}:?...}})")
    return problems


def env_example_problems(d: Deployment) -> list[str]:
    problems = []
    listed = parse_env_file(d.env_example)
    referenced = referenced_variables(d.doc)
    problems += [
        f"{name} is used by docker-compose.yaml but not in .env.example" for name in referenced if name not in listed
    ]
    problems += [f"{name} is in .env.example but unused" for name in listed if name not in referenced]
    problems += [
        f".env.example gives a value for the secret {n}" for n, v in listed.items() if SECRET_NAME.search(n) and v
    ]
    for m in (m for text in strings(d.doc) for m in re.finditer(r"(?<!\$)\$(?![${])[A-Za-z_]\w*", text)):
        problems.append(f"unbraced variable {m.group(0)}: write ${{VAR}} (or $$ for the container's shell)")
    return problems


def connection_problems(d: Deployment) -> list[str]:
    """Every connection parses and points at its service, both with compose's defaults and with .env.example."""
    problems = []
    expected = {"ledgerlake_s3": ("aws", None), "ledgerlake_warehouse": ("postgres", "postgres")}
    for i, venue in enumerate(VENUES):
        expected[f"ledgerlake_{venue}"] = ("http", f"http://venue-sandbox:{SANDBOX_PORT_BASE + i}")
    example = sample_env(d)
    defaults = {n: v for n, v in example.items() if SECRET_NAME.search(n) or n == "MINIO_ROOT_USER"}
    for source, variables in ((".env.example", example), ("compose's defaults", defaults)):
        try:
            env = environment(interpolate(d.doc, variables)["x-airflow-common"])
        except (InterpolationError, KeyError) as exc:
            problems.append(f"cannot interpolate with {source}: {exc}")
            continue
        for conn_id, (conn_type, host) in expected.items():
            raw = env.get(f"AIRFLOW_CONN_{conn_id.upper()}")
            if raw is None:
                problems.append(f"connection {conn_id} is not defined")
                continue
            try:
                conn = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"connection {conn_id} is not valid JSON: {exc}")
                continue
            if conn.get("conn_type") != conn_type:
                problems.append(f"{source}: {conn_id} has conn_type {conn.get('conn_type')!r}, not {conn_type}")
            if host is not None and conn.get("host") != host:
                problems.append(f"{source}: {conn_id} points at {conn.get('host')!r}, not {host}")
    sandbox = services(d.doc).get("venue-sandbox", {})
    command = [*sandbox.get("entrypoint", []), *sandbox.get("command", [])]
    if not ("ledgerlake" in command and "sandbox" in command and "0.0.0.0" in command):
        problems.append("venue-sandbox does not run `ledgerlake sandbox --host 0.0.0.0`")
    if str(SANDBOX_PORT_BASE) not in command:
        problems.append(f"venue-sandbox does not listen from port {SANDBOX_PORT_BASE}")
    if "ledgerlake" not in tomllib.loads(d.pyproject)["project"]["scripts"]:
        problems.append("the image has no `ledgerlake` command (pyproject [project.scripts])")
    return problems


def init_problems(d: Deployment) -> list[str]:
    problems = []
    command = services(d.doc).get("airflow-init", {}).get("command", [])
    if "/opt/airflow/include/docker/airflow-init.sh" not in command:
        problems.append("airflow-init does not run include/docker/airflow-init.sh")
    m = re.search(r"^VENUES=\(([^)]*)\)", d.init_script, re.M)
    if not m or tuple(m.group(1).split()) != VENUES:
        problems.append(f"airflow-init.sh's VENUES is not ledgerlake.schema.VENUES {VENUES}")
    for step in ("airflow db migrate", "airflow users create", "airflow pools import /opt/airflow/include/pools.json"):
        if step not in d.init_script:
            problems.append(f"airflow-init.sh does not run `{step}`")
    return problems


def dockerfile_problems(d: Deployment) -> list[str]:
    problems = []
    airflow = locked_version(d.lock, "apache-airflow")
    froms = re.findall(r"^FROM\s+(?:--\S+\s+)*(\S+)", d.dockerfile, re.M)
    bases = [b for f in froms if (b := re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", f))]
    if len(bases) != 1:
        problems.append(f"the Dockerfile must build on exactly one apache/airflow:<version>-python<x.y> image: {froms}")
    else:
        version, python = bases[0].groups()
        if version != airflow:
            problems.append(f"the Dockerfile builds on Airflow {version}, uv.lock pins {airflow}")
        requires = tomllib.loads(d.pyproject)["project"]["requires-python"]
        if f"{python}.0" not in SpecifierSet(requires):
            problems.append(f"the image's Python {python} is outside requires-python {requires}")
    for pinned in re.findall(r"apache-airflow==([\w.${}]+)", d.dockerfile):
        problems.append(f"the Dockerfile installs apache-airflow=={pinned} itself; the lock decides")
    if not re.search(r"^COPY\b.*\buv\.lock\b", d.dockerfile, re.M):
        problems.append("the Dockerfile does not copy uv.lock")
    if not re.search(r"\buv (export|sync)\b[^\n]*--(frozen|locked)", d.dockerfile):
        problems.append("the Dockerfile does not install from the lock (uv export/sync --frozen)")
    if "--no-dev" not in d.dockerfile:
        problems.append("the Dockerfile installs the dev group")
    uv_image = re.search(r"ghcr\.io/astral-sh/uv:(\S+)", d.dockerfile)
    uv_make = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", d.makefile, re.M)
    if not uv_image or not uv_make or uv_image.group(1) != uv_make.group(1):
        problems.append("the Dockerfile's uv is not the Makefile's UV_VERSION")
    build = (d.doc.get("x-airflow-common") or {}).get("build") or {}
    if build.get("context") != "." or build.get("dockerfile") != "include/docker/Dockerfile":
        problems.append("compose does not build include/docker/Dockerfile from the repository root")
    ignored = {line.strip() for line in d.dockerignore.splitlines()}
    problems += [
        f"the build context does not exclude {p}" for p in (".env", ".venv", ".git", ".tools") if p not in ignored
    ]
    return problems


CHECKS: dict[str, Callable[[Deployment], list[str]]] = {
    "schema": schema_problems,
    "services": service_set_problems,
    "dependencies": dependency_problems,
    "lifecycle": lifecycle_problems,
    "airflow_common": airflow_common_problems,
    "airflow_config": airflow_config_problems,
    "mounts": mount_problems,
    "secrets": secret_problems,
    "required_secrets": required_secret_problems,
    "env_example": env_example_problems,
    "connections": connection_problems,
    "init": init_problems,
    "dockerfile": dockerfile_problems,
}


@pytest.mark.parametrize("check", CHECKS)
def test_deployment(deployment: Deployment, check: str) -> None:
    assert CHECKS[check](deployment) == []


# --- every check fails on a broken copy ------------------------------------------------------------------


def _doc(d: Deployment, edit: Callable[[dict[str, Any]], Any]) -> Deployment:
    doc = copy.deepcopy(d.doc)
    edit(doc)
    return dataclasses.replace(d, doc=doc)


def _text(d: Deployment, old: str, new: str, field: str = "compose_text") -> Deployment:
    text = getattr(d, field)
    assert old in text, f"breaker is stale: {old!r} not in {field}"
    changed = dataclasses.replace(d, **{field: text.replace(old, new)})
    if field == "compose_text":
        changed = dataclasses.replace(changed, doc=yaml.safe_load(changed.compose_text))
    return changed


def _svc(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda doc: doc["services"][name]


BROKEN: list[tuple[str, str, Callable[[Deployment], Deployment]]] = [
    ("schema", "unknown key", lambda d: _doc(d, lambda doc: _svc("redis")(doc).update(restartt="always"))),
    (
        "schema",
        "bad healthcheck",
        lambda d: _doc(d, lambda doc: _svc("redis")(doc)["healthcheck"].update(intervall="1s")),
    ),
    ("services", "no triggerer", lambda d: _doc(d, lambda doc: doc["services"].pop("airflow-triggerer"))),
    (
        "dependencies",
        "unknown target",
        lambda d: _doc(
            d, lambda doc: _svc("minio-init")(doc)["depends_on"].update(s3={"condition": "service_started"})
        ),
    ),
    ("dependencies", "healthy without check", lambda d: _doc(d, lambda doc: _svc("redis")(doc).pop("healthcheck"))),
    (
        "dependencies",
        "completed on a server",
        lambda d: _doc(
            d,
            lambda doc: _svc("minio-init")(doc)["depends_on"].update(
                redis={"condition": "service_completed_successfully"}
            ),
        ),
    ),
    (
        "dependencies",
        "cycle",
        lambda d: _doc(
            d, lambda doc: _svc("minio")(doc).update(depends_on={"minio-init": {"condition": "service_started"}})
        ),
    ),
    ("lifecycle", "init restarts", lambda d: _doc(d, lambda doc: _svc("airflow-init")(doc).update(restart="always"))),
    (
        "lifecycle",
        "scheduler before init",
        lambda d: _doc(d, lambda doc: _svc("airflow-scheduler")(doc)["depends_on"].pop("airflow-init")),
    ),
    (
        "airflow_common",
        "other image",
        lambda d: _doc(d, lambda doc: _svc("airflow-worker")(doc).update(image="apache/airflow:3.3.2")),
    ),
    (
        "airflow_common",
        "other env",
        lambda d: _doc(
            d, lambda doc: _svc("airflow-worker")(doc)["environment"].update(AIRFLOW__CORE__LOAD_EXAMPLES="true")
        ),
    ),
    ("airflow_config", "local executor", lambda d: _text(d, "CeleryExecutor", "LocalExecutor")),
    ("airflow_config", "sqlite", lambda d: _text(d, "postgresql+psycopg://airflow", "sqlite://airflow")),
    ("airflow_config", "rabbitmq broker", lambda d: _text(d, "redis://:${REDIS_PASSWORD", "amqp://:${REDIS_PASSWORD")),
    (
        "airflow_config",
        "no execution api",
        lambda d: _text(d, "airflow-apiserver:8080/execution/", "localhost:8080/execution/"),
    ),
    (
        "airflow_config",
        "everyone admin",
        lambda d: _doc(
            d,
            lambda doc: _svc("airflow-apiserver")(doc)["environment"].update(
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True"
            ),
        ),
    ),
    (
        "mounts",
        "no include",
        lambda d: _doc(
            d,
            lambda doc: _svc("airflow-worker")(doc).update(
                volumes=["./dags:/opt/airflow/dags", "./plugins:/opt/airflow/plugins"]
            ),
        ),
    ),
    (
        "secrets",
        "literal password",
        lambda d: _doc(d, lambda doc: _svc("postgres")(doc)["environment"].update(POSTGRES_PASSWORD="hunter2")),
    ),
    (
        "secrets",
        "password in URL",
        lambda d: _text(d, "redis://:${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}@", "redis://:hunter2@"),
    ),
    (
        "secrets",
        "JSON literal",
        lambda d: _text(d, '"password": "${LEDGERLAKE_BINANCE_API_SECRET:-}"', '"password": "hunter2"'),
    ),
    (
        "secrets",
        "default secret",
        lambda d: _text(d, "${LEDGERLAKE_SUNX_API_SECRET:-}", "${LEDGERLAKE_SUNX_API_SECRET:-hunter2}"),
    ),
    (
        "secrets",
        "flag literal",
        lambda d: _text(
            d, '"--requirepass", "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}"', '"--requirepass", "hunter2"'
        ),
    ),
    (
        "required_secrets",
        "optional password",
        lambda d: _text(
            d, "REDISCLI_AUTH: ${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}", "REDISCLI_AUTH: ${REDIS_PASSWORD}"
        ),
    ),
    ("env_example", "unlisted variable", lambda d: _text(d, "AIRFLOW_HOST_PORT=8080\n", "", "env_example")),
    (
        "env_example",
        "committed secret",
        lambda d: _text(d, "REDIS_PASSWORD=\n", "REDIS_PASSWORD=hunter2\n", "env_example"),
    ),
    ("env_example", "unbraced variable", lambda d: _text(d, "image: postgres:17", "image: postgres:$PG_MAJOR")),
    ("connections", "wrong sandbox port", lambda d: _text(d, "http://venue-sandbox:9103", "http://venue-sandbox:9203")),
    (
        "connections",
        "wrong example port",
        lambda d: _text(d, "venue-sandbox:9101", "venue-sandbox:9100", "env_example"),
    ),
    ("connections", "broken JSON", lambda d: _text(d, '"conn_type": "aws",', '"conn_type": "aws"')),
    ("init", "venue missing", lambda d: _text(d, " sunx)", ")", "init_script")),
    (
        "dockerfile",
        "other airflow",
        lambda d: _text(d, "apache/airflow:3.3.2-python3.11", "apache/airflow:3.2.0-python3.11", "dockerfile"),
    ),
    ("dockerfile", "unlocked install", lambda d: _text(d, "--frozen", "", "dockerfile")),
    (
        "dockerfile",
        "second airflow",
        lambda d: _text(
            d, "pip install --no-cache-dir -r", "pip install --no-cache-dir apache-airflow==3.3.1 -r", "dockerfile"
        ),
    ),
    ("dockerfile", ".env in context", lambda d: _text(d, ".env\n", "", "dockerignore")),
]


@pytest.mark.parametrize(("check", "breakage", "break_it"), BROKEN, ids=[f"{c}-{b}" for c, b, _ in BROKEN])
def test_check_catches_a_broken_copy(
    deployment: Deployment, check: str, breakage: str, break_it: Callable[[Deployment], Deployment]
) -> None:
    assert CHECKS[check](break_it(deployment)), f"{check} did not notice: {breakage}"


def test_every_check_has_a_broken_copy() -> None:
    assert set(CHECKS) == {check for check, _, _ in BROKEN}


# --- what the files do, run for real --------------------------------------------------------------------


def test_compose_refuses_to_start_on_the_unedited_example(deployment: Deployment) -> None:
    """Copied without edits, .env.example leaves every required secret empty, and compose stops on each."""
    with pytest.raises(InterpolationError) as caught:
        interpolate(deployment.doc, parse_env_file(deployment.env_example))
    required = {n for n, ops in referenced_variables(deployment.doc).items() if ":?" in ops}
    required_secrets = {n for n in required if SECRET_NAME.search(n)}
    assert caught.value.missing == required_secrets
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "MINIO_ROOT_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"} <= required_secrets


def test_generated_env_starts_a_valid_deployment(deployment: Deployment) -> None:
    """include/docker/generate-env.sh fills every required secret; the interpolated file is still valid."""
    from cryptography.fernet import Fernet

    out = subprocess.run(
        ["sh", str(ROOT / "include/docker/generate-env.sh")], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    env = parse_env_file(out)
    assert set(env) == set(parse_env_file(deployment.env_example))
    rendered = interpolate(deployment.doc, env)  # raises if a required one is empty
    assert schema_problems(dataclasses.replace(deployment, doc=rendered)) == []
    Fernet(env["AIRFLOW_FERNET_KEY"].encode())  # raises on a malformed key
    secrets = [v for n, v in env.items() if SECRET_NAME.search(n) and v]
    assert len(secrets) == len(set(secrets)) >= 8
    assert 3 <= len(env["LEDGERLAKE_S3_ACCESS_KEY_ID"]) <= 20  # MinIO's limits
    assert all(8 <= len(env[n]) <= 40 for n in ("MINIO_ROOT_PASSWORD", "LEDGERLAKE_S3_SECRET_ACCESS_KEY"))
    assert all(not env[n] for n in env if n.endswith(("_API_KEY", "_API_SECRET", "_PASSPHRASE")))


def test_lake_connection_from_compose_gives_the_minio_settings(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 connection assembled in compose, read by ledgerlake's own LakeHook through Airflow."""
    from ledgerlake.hooks.lake import LakeHook

    env = sample_env(deployment)
    rendered = environment(interpolate(deployment.doc, env)["x-airflow-common"])
    monkeypatch.setenv("AIRFLOW_CONN_LEDGERLAKE_S3", rendered["AIRFLOW_CONN_LEDGERLAKE_S3"])
    settings = LakeHook().settings()
    assert settings.endpoint_url == "http://minio:9000"
    assert settings.bucket == env["LEDGERLAKE_BUCKET"]
    assert settings.access_key_id == env["LEDGERLAKE_S3_ACCESS_KEY_ID"]
    assert settings.secret_access_key == env["LEDGERLAKE_S3_SECRET_ACCESS_KEY"]


def test_deployment_accounts_are_the_sandbox_accounts_on_the_compose_connections(deployment: Deployment) -> None:
    """include/docker/accounts.yaml lists what the venue-sandbox service serves, on connections compose defines."""
    from ledgerlake.config import load_config
    from ledgerlake.sandbox.options import SandboxOptions
    from ledgerlake.sandbox.server import Sandbox

    common = environment(deployment.doc["x-airflow-common"])
    accounts_file = common["LEDGERLAKE_ACCOUNTS_FILE"]
    assert accounts_file.startswith(PROJECT_MOUNTS["./include"] + "/")
    path = ROOT / "include" / accounts_file.removeprefix(PROJECT_MOUNTS["./include"] + "/")
    command = deployment.doc["services"]["venue-sandbox"]["command"]
    seed, per_venue = int(command[command.index("--seed") + 1]), int(command[command.index("--accounts") + 1])

    served = Sandbox(SandboxOptions(seed=seed, accounts_per_venue=per_venue)).accounts_config()["venues"]
    configured = load_config(path)
    assert set(configured) == set(VENUES)
    for venue, venue_config in configured.items():
        assert [a.account for a in venue_config.accounts] == [a["account"] for a in served[venue]["accounts"]]
        for account in venue_config.accounts:
            assert f"AIRFLOW_CONN_{account.conn_id.upper()}" in common, f"no connection {account.conn_id}"


def test_dockerfile_lock_export_runs(deployment: Deployment, tmp_path: Path) -> None:
    """The Dockerfile's `uv export` line, run here on the files it copies: the locked Airflow, no dev tools."""
    uv = ROOT / ".tools/bin/uv"
    assert uv.exists() or shutil.which("uv"), "uv is missing: run `make install`"
    m = re.search(r"\buv (export [^\n\\]*)", deployment.dockerfile)
    assert m, "no `uv export` in the Dockerfile"
    args = [a for a in m.group(1).split() if a != "&&"]
    args = [str(tmp_path / "requirements.txt") if a.startswith("/tmp/requirements") else a for a in args]
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    subprocess.run([str(uv) if uv.exists() else "uv", *args, "--quiet"], cwd=tmp_path, check=True, timeout=60)
    pins = dict(
        line.split(" ;")[0].split("==")
        for line in (tmp_path / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith(("#", " "))
    )
    assert pins["apache-airflow"] == locked_version(deployment.lock, "apache-airflow")
    assert {"apache-airflow-providers-celery", "redis", "asyncpg", "psycopg"} <= set(pins)
    assert not {"pytest", "moto", "ruff", "mypy"} & set(pins)
