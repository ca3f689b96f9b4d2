"""DuckDB side of `cargo bench --bench sql`: the same queries over the same Parquet files.

Usage: python3 benches/sql_duckdb.py DATA_DIR PATIENT
Prints one line per query: `duckdb <name> <best seconds> <rows>`.
"""
import sys
import time

import duckdb

data, patient = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(
    f"CREATE VIEW access AS SELECT * FROM read_parquet('{data}/access/**/*.parquet', hive_partitioning = true)"
)
queries = {
    "group_by_app": "SELECT client_id, count(*), sum(bytes) FROM access GROUP BY 1",
    "one_patient": f"SELECT time, client_id, resource_type, status FROM access WHERE patient = '{patient}'",
}
for name, sql in queries.items():
    best = None
    rows = 0
    for _ in range(3):
        started = time.perf_counter()
        rows = len(con.execute(sql).fetchall())
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    print(f"duckdb {name} {best:.4f} {rows}", flush=True)
