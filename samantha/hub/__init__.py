"""A small hub for the twin and for tests: a separate runtime that Cubes reach only over HTTP.

It stores Reported State as Parquet partitioned by cube and day, publishes signed policy
modules, and relays signed approval decisions. See docs/hub.md.
"""
