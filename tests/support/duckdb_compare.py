"""Runs one saved query in DuckDB over a scopewatch history store and compares its rows with
DataFusion's (`scopewatch sql --output-format json`), cell by cell after normalising types, as a
multiset (ties in ORDER BY may come in either order). Exit 0 when equal, 1 with the
difference, 2 when DuckDB is missing. Used by tests/saved_queries.rs."""

import datetime
import decimal
import glob
import json
import os
import sys

try:
    import duckdb
except ImportError:
    print("python module duckdb missing: pip install duckdb (.ci/run installs it)")
    sys.exit(2)


def views(con, data):
    for table in sorted(os.listdir(data)):
        path = os.path.join(data, table)
        if not os.path.isdir(path):
            continue
        if not glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True):
            continue
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}/**/*.parquet', "
            "hive_partitioning = true, union_by_name = true)"
        )


def norm(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        return round(float(v), 6)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, str):
        if len(v) >= 19 and v[4] == "-" and v[10] == "T":
            try:
                t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
                return norm(t)
            except ValueError:
                return v
        return v
    if isinstance(v, (list, tuple)):
        return sorted((norm(x) for x in v), key=json.dumps)
    return str(v)


def main():
    data, query_file, datafusion_json = sys.argv[1:4]
    con = duckdb.connect()
    # A session zone other than UTC: the saved queries must not depend on it.
    con.execute("SET TimeZone = 'America/New_York'")
    views(con, data)
    result = con.execute(open(query_file).read())
    columns = [d[0] for d in result.description]
    duck = [dict(zip(columns, row)) for row in result.fetchall()]
    fusion = json.load(open(datafusion_json))
    if set(columns) != set(fusion[0].keys() if fusion else columns):
        print(f"columns differ: duckdb {columns}, datafusion {list(fusion[0].keys())}")
        sys.exit(1)

    def rows(rs):
        return sorted(
            (json.dumps([norm(r.get(c)) for c in columns]) for r in rs)
        )

    a, b = rows(duck), rows(fusion)
    if a != b:
        only_duck = [r for r in a if r not in b][:3]
        only_fusion = [r for r in b if r not in a][:3]
        print(f"{len(a)} rows in duckdb, {len(b)} in datafusion")
        print(f"only in duckdb: {only_duck}")
        print(f"only in datafusion: {only_fusion}")
        sys.exit(1)
    print(f"{len(a)} rows equal")


main()
