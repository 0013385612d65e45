"""Vendor replay server (test double for the vendors' live APIs; see server.py)."""
