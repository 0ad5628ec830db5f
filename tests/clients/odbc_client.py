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

# As BI tools (Tableau) configure psqlODBC for large results: UseDeclareFetch makes the driver
# read every result through `DECLARE ... CURSOR` and `FETCH n`, here 500 rows at a time.
conn = pyodbc.connect(
    f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={PORT};DATABASE=quarry;UID=odbc;PWD=unused;"
    "UseDeclareFetch=1;Fetch=500",
    autocommit=True,
)
cur = conn.cursor()
cur.execute("SELECT count(*), sum(l_orderkey) FROM tpch.lineitem")
expected_rows, expected_sum = cur.fetchone()
cur.execute("SELECT l_orderkey, l_comment FROM tpch.lineitem")
rows = 0
total = 0
while True:
    chunk = cur.fetchmany(2000)
    if not chunk:
        break
    rows += len(chunk)
    total += sum(row[0] for row in chunk)
check((rows, total) == (expected_rows, expected_sum), f"declare-fetch read {rows} {total}, expected {expected_rows} {expected_sum}")

# A metadata probe, then a filter list in a temporary table filled by bound inserts.
cur.execute("SELECT * FROM tpch.region WHERE 1=0")
check([d[0] for d in cur.description] == ["r_regionkey", "r_name", "r_comment"], f"WHERE 1=0 {cur.description}")
check(cur.fetchall() == [], "WHERE 1=0 has no rows")
cur.execute('CREATE LOCAL TEMPORARY TABLE "#Tableau_2_Filter" ("r_name" TEXT) ON COMMIT PRESERVE ROWS')
cur.executemany('INSERT INTO "#Tableau_2_Filter" ("r_name") VALUES (?)', [("ASIA",), ("EUROPE",)])
cur.execute(
    'SELECT r.r_name, count(*) FROM tpch.nation n JOIN tpch.region r ON n.n_regionkey = r.r_regionkey '
    'JOIN "#Tableau_2_Filter" f ON r.r_name = f.r_name GROUP BY r.r_name ORDER BY 1'
)
filtered = [tuple(row) for row in cur.fetchall()]
check(filtered == [("ASIA", 5), ("EUROPE", 5)], f"temp table filter {filtered}")
cur.execute('DROP TABLE "#Tableau_2_Filter"')
conn.close()
print(f"declare-fetch read {rows} rows")
print("odbc ok")
