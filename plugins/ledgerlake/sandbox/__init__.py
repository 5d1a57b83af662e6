"""A local, faithful sandbox of the five venue APIs with fault injection and ground truth.

An independent second reading of the venue documents: it never imports ledgerlake.venues or ledgerlake.engine.

    from ledgerlake.sandbox import Sandbox, SandboxOptions
    with Sandbox(SandboxOptions(seed=7)) as sb:
        sb.base_url("coinbase"); sb.accounts("coinbase"); sb.truth("coinbase", account, interval)
"""

from ledgerlake.sandbox.options import FAULT_PROFILES, RATE_LIMIT_PROFILES, FaultSpec, RateLimitSpec, SandboxOptions
from ledgerlake.sandbox.server import Sandbox, make_accounts
from ledgerlake.sandbox.venue import SandboxAccount

__all__ = [
    "FAULT_PROFILES",
    "RATE_LIMIT_PROFILES",
    "FaultSpec",
    "RateLimitSpec",
    "Sandbox",
    "SandboxAccount",
    "SandboxOptions",
    "make_accounts",
]
