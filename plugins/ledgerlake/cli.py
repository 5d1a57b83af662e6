"""`ledgerlake` command line. Each subcommand lives beside the code it drives and is imported lazily,
so `ledgerlake --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help). Each module has `add_arguments(parser)` and `run(args) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": ("ledgerlake.sandbox.cli", "run the local venue sandbox (or print its ground truth)"),
    "query": ("ledgerlake.warehouse.cli", "run SQL against the warehouse"),
    "report": ("ledgerlake.warehouse.report", "write the HTML report of balances, flows and reconciliation"),
    "demo": ("ledgerlake.demo", "run the whole pipeline locally on the sandbox"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="ledgerlake", description=__doc__.split("\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Build only the subparser asked for; the others are listed by name and help alone.
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    result: int = importlib.import_module(COMMANDS[args.command][0]).run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
