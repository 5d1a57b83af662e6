"""Operators orchestrate: they resolve the interval and the settings, call plain ledgerlake code, and
return a small summary to XCom."""
