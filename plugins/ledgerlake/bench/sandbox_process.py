"""The venue sandbox in a process of its own, so the pipeline process is measured alone.

    python -m ledgerlake.bench.sandbox_process '<SandboxOptions fields as JSON>'

Prints one JSON line ({venue: {base_url, accounts}}, as `ledgerlake sandbox --json`), then answers one JSON
line per command read from stdin: `stats`, `limits <profile>` (documented | off | fast),
`prepare <venue> <account-index> <start-iso> <end-iso>` (generate and serialise that range ahead of serving:
Sandbox.prepare), `quit`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from ledgerlake.interval import Interval
from ledgerlake.sandbox import Sandbox, SandboxOptions
from ledgerlake.sandbox.cli import describe


def options_from_json(text: str) -> SandboxOptions:
    fields: dict[str, Any] = json.loads(text)
    if fields.get("now"):
        fields["now"] = datetime.fromisoformat(fields["now"])
    return SandboxOptions(**fields)


def prepare(sandbox: Sandbox, arg: str) -> dict[str, Any]:
    try:
        venue, index, start, end = arg.split()
        account = sandbox.accounts(venue)[int(index)].account
        interval = Interval.parse(start, end)
        return {"prepared": sandbox.prepare(venue, account, interval)}
    except (ValueError, KeyError, IndexError) as exc:
        return {"error": f"prepare {arg!r}: {exc}"}


def main(argv: list[str]) -> int:
    sandbox = Sandbox(options_from_json(argv[0] if argv else "{}")).start()
    try:
        print(json.dumps(describe(sandbox)), flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "stats":
                answer: Any = sandbox.stats()
            elif command == "limits":
                sandbox.set_rate_limits(arg)
                answer = {"limits": arg}
            elif command == "prepare":
                answer = prepare(sandbox, arg)
            elif command == "quit":
                break
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
