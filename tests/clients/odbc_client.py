"""pyodbc over psqlODBC (the PostgreSQL Unicode driver) against a running Quarry.

Usage: python3 odbc_client.py PORT. Exits 1 at the first mismatch.
"""

import decimal
import sys

import pyodbc

PORT = int(sys.argv[1])


def check(ok, what):
    if not ok:
        print(f"MISMATCH: {what}", file=sys.stderr)
        sys.exit(1)


conn = pyodbc.connect(
    f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={PORT};DATABASE=quarry;UID=odbc;PWD=unused",
    autocommit=False,
)
cur = conn.cursor()
cur.execute("SELECT n_regionkey, count(*) FROM tpch.nation GROUP BY n_regionkey ORDER BY n_regionkey")
expected = {region: count for region, count in cur.fetchall()}
check(len(expected) == 5, f"regions {expected}")
for region, count in expected.items():
    # Bound parameters: psqlODBC prepares a named statement and binds the value.
    cur.execute("SELECT count(*), min(n_name) FROM tpch.nation WHERE n_regionkey = ?", region)
    got, name = cur.fetchone()
    check(got == count and isinstance(name, str), f"region {region}: {got} {name!r}")
cur.execute("SELECT o_totalprice FROM tpch.orders WHERE o_orderkey = ?", 1)
price = cur.fetchone()[0]
check(isinstance(price, decimal.Decimal), f"numeric as Decimal: {price!r}")
conn.rollback()

tables = sorted(row.table_name for row in cur.tables(schema="tpch", tableType="TABLE"))
check(
    tables == ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"],
    f"SQLTables {tables}",
)
columns = [(row.column_name, row.type_name, row.ordinal_position) for row in cur.columns(table="nation", schema="tpch")]
check([c[0] for c in columns] == ["n_nationkey", "n_name", "n_regionkey", "n_comment"], f"SQLColumns {columns}")
check([c[2] for c in columns] == [1, 2, 3, 4], f"ordinal positions {columns}")
conn.close()
print("odbc ok")
