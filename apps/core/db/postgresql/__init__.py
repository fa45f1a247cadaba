"""PostgreSQL backend whose connection health check costs no round trip (see base.py)."""
