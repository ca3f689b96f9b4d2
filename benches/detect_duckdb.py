"""DuckDB side of `cargo bench --bench detect` (issue #18): the hourly per-app aggregation of
the same NDJSON the detect run read (requests, bytes, resources returned, distinct patients per
app and hour). It is a fraction of detect's work; the bench prints the ratio of the two rates.

Usage: python3 benches/detect_duckdb.py EVENTS.ndjson
Prints one line: `duckdb <seconds> <groups> <peak RSS MB>`; the bench divides the file's events
(tokens and accesses, as detect's figure counts them) by the seconds.
"""
import resource
import sys
import time

import duckdb

path = sys.argv[1]
con = duckdb.connect()
started = time.perf_counter()
rows = con.execute(
    f"""
    SELECT client_id, date_trunc('hour', CAST(time AS TIMESTAMP)) AS hour,
           count(*) AS requests, sum(bytes) AS bytes,
           sum(resources_returned) AS resources, count(DISTINCT patient) AS patients
    FROM read_ndjson_auto('{path}') WHERE type = 'access' GROUP BY ALL
    """
).fetchall()
elapsed = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"duckdb {elapsed:.4f} {len(rows)} {peak_mb:.0f}", flush=True)
