"""Times the 22 TPC-H queries in DuckDB over the Parquet files Quarry reads, for a
side-by-side with quarry-bench (same files, same machine, same warm-up and runs).

    pip install duckdb==1.5.5
    python benches/compare_duckdb.py DATA_DIR/warehouse/tpch.db [--runs 3] [--out FILE.json]

A first step of the comparison runner (issue 7): DataFusion's Python package and Spark
are not wired yet.
"""
import argparse
import json
import os
import statistics
import time

import duckdb

TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tpch_dir", help="folder with one sub-folder of Parquet files per table")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    con = duckdb.connect()
    for table in TABLES:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{args.tpch_dir}/{table}/*.parquet')")
    results = []
    for n in range(1, 23):
        with open(os.path.join(here, "..", "tpch", "queries", f"q{n:02d}.sql")) as f:
            sql = f.read()
        con.execute(sql).fetchall()
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        median = statistics.median(times)
        results.append({"query": n, "median_ms": round(median, 2), "runs_ms": [round(t, 2) for t in times]})
        print(f"q{n:02d}: {median:9.1f} ms")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    total = sum(r["median_ms"] for r in results)
    print(f"total: {total:.1f} ms (DuckDB {duckdb.__version__}, threads={threads})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"engine": f"duckdb {duckdb.__version__}", "queries": results}, f, indent=2)


if __name__ == "__main__":
    main()
