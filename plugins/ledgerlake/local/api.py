"""A small client for Airflow 3's REST API (`/api/v2`), logged in as a simple-auth-manager user the way
the UI is: POST /auth/token with username and password gives a JWT, sent as a bearer token."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

FINISHED_RUN_STATES = {"success", "failed"}
FAILED_TI_STATES = {"failed", "upstream_failed"}
FINISHED_TI_STATES = {"success", "failed", "upstream_failed", "skipped", "removed"}


class AirflowApiError(RuntimeError):
    """The API answered with an error; the message has the method, path, status and Airflow's detail."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {detail}")
        self.status = status


@dataclass(frozen=True)
class RunProgress:
    """Where one DAG's backfill stands."""

    dag_id: str
    total: int
    states: dict[str, int]
    running: tuple[str, ...]  # runs in progress: "YYYY-MM-DD task" (data interval start, task running now)
    tasks_done: int = 0
    tasks_total: int = 0

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.states.items() if s in FINISHED_RUN_STATES)

    @property
    def failed(self) -> int:
        return self.states.get("failed", 0)

    @property
    def done(self) -> bool:
        return self.total > 0 and self.finished == self.total


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None

    def close(self) -> None:
        self._http.close()

    def _login(self) -> str:
        r = self._http.post("/auth/token", json={"username": self._username, "password": self._password})
        if r.status_code not in (200, 201):
            raise AirflowApiError("POST", "/auth/token", r.status_code, r.text[:300])
        token: str = r.json()["access_token"]
        return token

    def request(self, method: str, path: str, *, retries: int = 5, **kwargs: Any) -> Any:
        """One API call. Retries transient failures (connection errors, 5xx such as a locked SQLite)."""
        extra_headers = kwargs.pop("headers", {})
        for attempt in range(retries + 1):
            if self._token is None:
                self._token = self._login()
            headers = {**extra_headers, "Authorization": f"Bearer {self._token}"}
            try:
                r = self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if attempt == retries:
                    raise AirflowApiError(method, path, 0, str(exc)) from None
                time.sleep(1 + attempt)
                continue
            if r.status_code == 401 and attempt < retries:
                self._token = None  # expired
                continue
            if r.status_code >= 500 and attempt < retries:
                time.sleep(1 + attempt)
                continue
            if r.status_code >= 400:
                try:
                    detail = str(r.json().get("detail", r.text))
                except ValueError:
                    detail = r.text
                raise AirflowApiError(method, path, r.status_code, detail[:1000])
            if r.headers.get("content-type", "").startswith("application/json"):
                return r.json()
            return r.text
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    # DAGs, pools -----------------------------------------------------------------------------------

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.get("/dags", limit=1000)["dags"]}

    def import_errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.get("/importErrors", limit=1000)["import_errors"]
        return errors

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 180) -> None:
        """Until the dag-processor has parsed and stored every DAG (their import errors if it fails)."""
        deadline = time.monotonic() + timeout
        while True:
            missing = dag_ids - self.dag_ids()
            if not missing:
                return
            errors = self.import_errors()
            if errors:
                text = "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in errors)
                raise AirflowApiError("GET", "/importErrors", 200, f"DAG files fail to import:\n{text}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAGs not parsed after {timeout:.0f} s: {sorted(missing)}")
            time.sleep(1)

    def set_pause(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def set_pool(self, name: str, slots: int, description: str = "") -> None:
        body = {"name": name, "slots": slots, "description": description, "include_deferred": False}
        try:
            self.request("PATCH", f"/pools/{name}", json=body)
        except AirflowApiError as exc:
            if exc.status != 404:
                raise
            self.request("POST", "/pools", json=body)

    # Backfills -------------------------------------------------------------------------------------

    def create_backfill(
        self,
        dag_id: str,
        from_date: datetime,
        to_date: datetime,
        *,
        reprocess_behavior: str = "none",
        max_active_runs: int = 10,
        wait_if_running: float = 90,
    ) -> dict[str, Any]:
        """POST /backfills as the UI's form does. A DAG has one running backfill at a time, and a finished
        one is marked complete up to 30 s later, so a 409 is retried for up to `wait_if_running` seconds."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": max_active_runs,
            "run_backwards": False,
        }
        deadline = time.monotonic() + wait_if_running
        while True:
            try:
                backfill: dict[str, Any] = self.request("POST", "/backfills", json=body)
                return backfill
            except AirflowApiError as exc:
                if exc.status != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def backfill(self, backfill_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/backfills/{backfill_id}")
        return result

    def backfill_runs(self, backfill: dict[str, Any]) -> list[dict[str, Any]]:
        """The runs a backfill covers: backfill runs of its DAG with a logical date in its range (the API
        does not expose a run's backfill id; a reprocessed run keeps its run id and joins the new one)."""
        runs: list[dict[str, Any]] = self.get(
            f"/dags/{backfill['dag_id']}/dagRuns",
            run_type="backfill",
            logical_date_gte=backfill["from_date"],
            logical_date_lte=backfill["to_date"],
            limit=1000,
        )["dag_runs"]
        return runs

    def progress(self, backfill: dict[str, Any]) -> RunProgress:
        """How far a backfill is. A run counts as finished only if it ended after the backfill was created,
        so a reprocessed run is not mistaken for done in the moment before the scheduler picks it up."""
        runs = self.backfill_runs(backfill)
        created = _instant(backfill["created_at"])
        states: dict[str, int] = {}
        for r in runs:
            state = r["state"]
            if state in FINISHED_RUN_STATES and (not r.get("end_date") or _instant(r["end_date"]) < created):
                state = "queued"
            states[state] = states.get(state, 0) + 1
        running_runs = {r["dag_run_id"]: r["data_interval_start"][:10] for r in runs if r["state"] == "running"}
        tasks_done = tasks_total = 0
        now: dict[str, set[str]] = {run_id: set() for run_id in running_runs}
        if runs:
            tis = self.get(f"/dags/{backfill['dag_id']}/dagRuns/~/taskInstances", limit=1000)["task_instances"]
            ours = {r["dag_run_id"] for r in runs}
            for ti in tis:
                if ti["dag_run_id"] not in ours:
                    continue
                tasks_total += 1
                tasks_done += ti["state"] in FINISHED_TI_STATES
                label = {"running": "", "queued": " waiting", "scheduled": " waiting", "up_for_retry": " retry"}
                if ti["dag_run_id"] in now and ti["state"] in label:
                    now[ti["dag_run_id"]].add(ti["task_id"] + label[ti["state"]])
        running = tuple(
            sorted(f"{day} {'+'.join(sorted(now[run_id])) or 'scheduling'}" for run_id, day in running_runs.items())
        )
        return RunProgress(backfill["dag_id"], len(runs), states, running, tasks_done, tasks_total)

    def wait_for_backfills(
        self,
        backfills: list[dict[str, Any]],
        timeout: float,
        on_progress: Callable[[list[RunProgress]], None] | None = None,
        interval: float = 2,
    ) -> list[RunProgress]:
        """Poll until every run of the given backfills (as create_backfill returned them) has finished."""
        deadline = time.monotonic() + timeout
        while True:
            progress = [self.progress(b) for b in backfills]
            if on_progress:
                on_progress(progress)
            if all(p.done for p in progress):
                return progress
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfills not finished after {timeout:.0f} s: {progress}")
            time.sleep(interval)

    def wait_backfills_complete(self, backfill_ids: list[int], timeout: float = 90) -> None:
        """Until the scheduler has marked the backfills complete (it checks every 30 s)."""
        deadline = time.monotonic() + timeout
        while any(self.backfill(b)["completed_at"] is None for b in backfill_ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfills {backfill_ids} not marked complete after {timeout:.0f} s")
            time.sleep(2)

    # Task instances and their logs -----------------------------------------------------------------

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        tis: list[dict[str, Any]] = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)[
            "task_instances"
        ]
        return tis

    def task_log(self, ti: dict[str, Any]) -> str:
        """The log of a task instance's latest try, as text."""
        path = f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
        params = {"map_index": ti.get("map_index", -1), "full_content": True}
        body = self.request("GET", path, params=params, headers={"Accept": "application/json"})
        if isinstance(body, str):
            return body
        return "\n".join(_log_line(item) for item in body.get("content") or [])

    def failed_task_logs(self, dag_ids: list[str], max_logs: int = 10) -> str:
        """The logs of failed task instances of the DAGs' latest runs: what CI output should show."""
        out: list[str] = []
        for dag_id in dag_ids:
            runs = self.get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="-start_date")["dag_runs"]
            for run in runs:
                for ti in self.task_instances(dag_id, run["dag_run_id"]):
                    if ti["state"] not in FAILED_TI_STATES or len(out) >= max_logs:
                        continue
                    header = (
                        f"===== {dag_id} {run['dag_run_id']} {ti['task_id']}[{ti.get('map_index', -1)}] {ti['state']}"
                    )
                    try:
                        text = self.task_log(ti) if ti["state"] == "failed" else "(upstream failed)"
                    except AirflowApiError as exc:
                        text = f"(log unavailable: {exc})"
                    out.append(f"{header}\n{text[-6000:]}")
        return "\n".join(out)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Keys every structured task log line repeats; left out so a failure reads like a plain log.
_LOG_CONTEXT_KEYS = {
    "timestamp",
    "level",
    "event",
    "logger",
    "task_id",
    "dag_id",
    "run_id",
    "ti_id",
    "map_index",
    "try_number",
    "filename",
    "lineno",
    "loc",
    "error_detail",
    "sources",
}


def _log_line(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    extra = {k: v for k, v in item.items() if k not in _LOG_CONTEXT_KEYS}
    line = f"{item.get('timestamp', '')} {item.get('level', '')} {item.get('event', '')}"
    if extra:
        line += f" {extra}"
    for error in item.get("error_detail") or []:
        for frame in (error.get("frames") or [])[-6:]:
            line += f"\n    File {frame.get('filename')}, line {frame.get('lineno')}, in {frame.get('name')}"
        line += f"\n  {error.get('exc_type')}: {error.get('exc_value')}"
    return line
