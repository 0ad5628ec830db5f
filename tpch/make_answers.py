"""Regenerates tpch/answers/sf*/qNN.csv: DuckDB runs the 22 queries over the Parquet files
that `quarry tpch generate` writes (the same data Quarry's tests read).

    pip install duckdb==1.5.5
    quarry tpch generate --sf 0.01 --out /tmp/tpch-0.01   # likewise 0.1 and 1
    python tpch/make_answers.py /tmp/tpch-0.01 0.01

Numbers are printed as DuckDB prints them; the test compares numbers with a tolerance.
"""
import os
import sys

import duckdb


def main(data_dir: str, sf: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    con = duckdb.connect()
    for table in ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{data_dir}/{table}/*.parquet')")
    out_dir = os.path.join(here, "answers", f"sf{sf}")
    os.makedirs(out_dir, exist_ok=True)
    for n in range(1, 23):
        with open(os.path.join(here, "queries", f"q{n:02d}.sql")) as f:
            query = f.read()
        cur = con.execute(query)
        header = [d[0] for d in cur.description]
        lines = ["|".join(header)]
        for row in cur.fetchall():
            lines.append("|".join("NULL" if v is None else str(v) for v in row))
        with open(os.path.join(out_dir, f"q{n:02d}.csv"), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
