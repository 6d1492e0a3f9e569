"""Fault injection: the SDK against servers that refuse, reset, hang, lie and rate-limit."""
