"""psycopg2, SQLAlchemy 2 (inspector + pandas) and psycopg 3 against a running Quarry.

Usage: python3 python_clients.py PORT. Each check compares Quarry's answer with an answer
computed another way (a plain query, or the other driver); exits 1 at the first mismatch.
"""

import datetime
import decimal
import os
import sys
import tempfile

import pandas
import psycopg
import psycopg2
import sqlalchemy
from psycopg.types import TypeInfo

PORT = int(sys.argv[1])


def check(ok, what):
    if not ok:
        print(f"MISMATCH: {what}", file=sys.stderr)
        sys.exit(1)


def run_psycopg2():
    conn = psycopg2.connect(host="127.0.0.1", port=PORT, user="py2", dbname="quarry")
    check(conn.server_version >= 150000, f"server_version {conn.server_version}")
    cur = conn.cursor()
    # Client-side interpolation: psycopg2 sends literals over the simple protocol in a transaction.
    cur.execute(
        "SELECT o_orderkey, o_totalprice, o_orderdate, o_orderstatus FROM tpch.orders "
        "WHERE o_orderkey < %s AND o_orderstatus <> %s ORDER BY o_orderkey",
        (100, "zed"),
    )
    rows = cur.fetchall()
    oids = [c.type_code for c in cur.description]
    check(oids == [20, 1700, 1082, 25] or oids == [20, 1700, 1082, 1043], f"column type OIDs {oids}")
    check(len(rows) > 0, "orders below 100")
    # Each column names its table and column number, as pg_class and pg_attribute have them
    # (asked on a second connection: the OIDs are the same in every session).
    origins = [(c.table_oid, c.table_column) for c in cur.description]
    other = psycopg2.connect(host="127.0.0.1", port=PORT, user="py2", dbname="quarry")
    other_cur = other.cursor()
    other_cur.execute(
        "SELECT a.attname, c.oid, a.attnum FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = 'tpch' AND c.relname = 'orders'"
    )
    catalog = {name: (oid, attnum) for name, oid, attnum in other_cur.fetchall()}
    other.close()
    expected = [catalog.get(c.name) for c in cur.description]
    check(origins == expected and expected[0][1] == 1, f"column origins {origins}, pg_attribute says {expected}")
    cur.execute("SELECT o_orderkey + 1, count(*) FROM tpch.orders GROUP BY 1 LIMIT 1")
    computed = [(c.table_oid, c.table_column) for c in cur.description]
    check(computed in ([(None, None)] * 2, [(0, 0)] * 2), f"computed columns have no origin: {computed}")
    # Computed columns carry PostgreSQL's names, repeated where PostgreSQL repeats them.
    names = [c.name for c in cur.description]
    check(names == ["?column?", "count"], f"computed column names {names}")
    cur.execute("SELECT 1, 2, '2024-01-02'::date, EXTRACT(year FROM o_orderdate), o_orderkey::int "
                "FROM tpch.orders LIMIT 1")
    names = [c.name for c in cur.description]
    check(names == ["?column?", "?column?", "date", "extract", "o_orderkey"], f"column names {names}")
    key, price, date, status = rows[0]
    check(isinstance(price, decimal.Decimal) and price.as_tuple().exponent == -2, f"price {price!r}")
    check(isinstance(date, datetime.date), f"date {date!r}")
    cur.execute("SELECT count(*) FROM tpch.orders WHERE o_orderkey < 100")
    check(cur.fetchone()[0] == len(rows), "count agrees with the rows")
    cur.execute("SELECT %s::date, %s, NULL", (datetime.date(2024, 1, 2), decimal.Decimal("1.5")))
    check(cur.fetchone() == (datetime.date(2024, 1, 2), decimal.Decimal("1.5"), None), "literal round trip")
    conn.rollback()
    try:
        cur.execute("SELECT * FROM tpch.no_such_table")
        check(False, "a missing table is an error")
    except psycopg2.Error as e:
        check(e.pgcode == "42P01", f"missing table SQLSTATE {e.pgcode}")
        check("no_such_table" in str(e), f"error names the table: {e}")
    conn.rollback()
    conn.close()
    return rows


def run_sqlalchemy(psycopg2_rows):
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://sa@127.0.0.1:{PORT}/quarry")
    inspector = sqlalchemy.inspect(engine)
    schemas = inspector.get_schema_names()
    check("tpch" in schemas and "default" in schemas, f"schemas {schemas}")
    tables = sorted(inspector.get_table_names(schema="tpch"))
    check(
        tables == ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"],
        f"tables {tables}",
    )
    columns = inspector.get_columns("orders", schema="tpch")
    names = [c["name"] for c in columns]
    check(names[:3] == ["o_orderkey", "o_custkey", "o_orderstatus"], f"columns {names}")
    by_name = {c["name"]: c for c in columns}
    price_type = by_name["o_totalprice"]["type"]
    check(
        isinstance(price_type, sqlalchemy.Numeric) and (price_type.precision, price_type.scale) == (15, 2),
        f"o_totalprice type {price_type!r}",
    )
    check(isinstance(by_name["o_orderdate"]["type"], sqlalchemy.Date), f"o_orderdate {by_name['o_orderdate']}")
    check(inspector.get_pk_constraint("orders", schema="tpch")["constrained_columns"] == [], "no primary key")
    check(inspector.get_foreign_keys("orders", schema="tpch") == [], "no foreign keys")
    check(inspector.get_indexes("orders", schema="tpch") == [], "no indexes")
    check(isinstance(inspector.get_view_names(schema="tpch"), list), "view names")

    frame = pandas.read_sql(
        "SELECT o_orderkey, o_totalprice, o_orderdate, o_orderstatus FROM tpch.orders "
        "WHERE o_orderkey < 100 ORDER BY o_orderkey",
        engine,
    )
    check(len(frame) == len(psycopg2_rows), f"pandas rows {len(frame)} vs {len(psycopg2_rows)}")
    check(list(frame["o_orderkey"]) == [r[0] for r in psycopg2_rows], "pandas keys")
    region = pandas.read_sql_table("region", engine, schema="tpch")
    check(list(region.columns) == ["r_regionkey", "r_name", "r_comment"], f"read_sql_table columns {list(region.columns)}")
    with engine.connect() as conn:
        count = conn.execute(sqlalchemy.text("SELECT count(*) FROM tpch.region")).scalar()
    check(len(region) == count, f"read_sql_table rows {len(region)} vs {count}")


def run_psycopg3():
    with psycopg.connect(f"host=127.0.0.1 port={PORT} user=py3 dbname=quarry") as conn:
        info = TypeInfo.fetch(conn, "numeric")
        check(info is not None and info.oid == 1700 and info.array_oid == 1231, f"TypeInfo numeric {info}")
        with conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT o_orderkey, o_totalprice, o_orderdate FROM tpch.orders WHERE o_orderkey = %s", (1,)
            )
            binary = cur.fetchone()
        with conn.cursor() as cur:
            cur.execute(
                "SELECT o_orderkey, o_totalprice, o_orderdate FROM tpch.orders WHERE o_orderkey = %s", (1,)
            )
            text = cur.fetchone()
        check(binary == text, f"binary {binary} vs text {text}")
        # The extended protocol's Describe names computed columns as PostgreSQL does.
        with conn.cursor() as cur:
            cur.execute("SELECT %s::int + 1, max(n_name), count(*) FROM tpch.nation", (1,), prepare=True)
            names = [c.name for c in cur.description]
            check(names == ["?column?", "max", "count"], f"prepared column names {names}")
        # COPY TO STDOUT: a message per row (psycopg's rows() parses one row per message),
        # and the tag's row count, which does not count a header.
        with conn.cursor() as cur:
            query = "SELECT r_regionkey, r_name FROM tpch.region ORDER BY 1"
            with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER)") as copy:
                blocks = [bytes(block).decode() for block in copy]
            check(blocks[:2] == ["r_regionkey,r_name\n", "0,AFRICA\n"] and len(blocks) == 6, f"copy {blocks}")
            check(cur.rowcount == 5, f"COPY tag rows {cur.rowcount}")
            with cur.copy(f"COPY ({query}) TO STDOUT") as copy:
                copy.set_types(["int8", "text"])
                parsed = list(copy.rows())
            check(parsed[0] == (0, "AFRICA") and len(parsed) == 5, f"copy rows {parsed}")
            with cur.copy("COPY (SELECT r_name FROM tpch.region WHERE false) TO STDOUT (FORMAT csv, HEADER)") as copy:
                blocks = [bytes(block).decode() for block in copy]
            check(blocks == ["r_name\n"] and cur.rowcount == 0, f"header only: {blocks}, COPY {cur.rowcount}")


def run_declared_lengths():
    """varchar(n) and char(n) columns keep their length: in RowDescription (type and typmod,
    which psycopg2 reports as internal_size) and in pg_attribute."""
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "codes.csv"), "w") as f:
        f.write("AB,alpha\nCD,beta\n")
    conn = psycopg2.connect(host="127.0.0.1", port=PORT, user="py2", dbname="quarry")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(
        "CREATE EXTERNAL TABLE codes (code char(2), name varchar(25)) "
        f"ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' STORED AS TEXTFILE LOCATION '{folder}'"
    )
    cur.execute("SELECT code, name, name || '!' FROM codes ORDER BY code")
    check(cur.fetchall() == [("AB", "alpha", "alpha!"), ("CD", "beta", "beta!")], "codes rows")
    described = [(c.type_code, c.internal_size) for c in cur.description[:2]]
    check(described == [(1042, 2), (1043, 25)], f"char(2), varchar(25) described as {described}")
    check(cur.description[2].type_code == 25, f"an expression is text: {cur.description[2]}")
    cur.execute(
        "SELECT a.attname, a.atttypid, a.atttypmod FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid WHERE c.relname = 'codes' ORDER BY a.attnum"
    )
    attributes = [(name, int(type_oid), typmod) for name, type_oid, typmod in cur.fetchall()]
    check(attributes == [("code", 1042, 6), ("name", 1043, 29)], f"pg_attribute {attributes}")
    conn.close()


rows = run_psycopg2()
run_sqlalchemy(rows)
run_psycopg3()
run_declared_lengths()
print("python clients ok")
