"""What happened on this Cube, for humans and for DORA: records read from outside the daemon, DORA metrics,
timelines, the HTML report.

- `incident_summary`: The incident's summary, written by code from its evidence: always present, always true.
- `dora`: DORA for the edge: the four metrics from a Cube's own records (or a fleet's Parquet).
- `records_access`: Reading the daemon's records from outside it: through its API while it runs, else read-only.
- `report`: `samantha report`: one self-contained HTML file (inline CSS, plots as PNG data URIs).
- `timeline`: Incident timelines: requests, errors and latency per slot, with actions marked, as SVG or PNG.
"""

__all__ = ["dora", "incident_summary", "records_access", "report", "timeline"]
