"""Times the 22 TPC-H queries in other engines over the Parquet files Quarry reads, for a
side-by-side with quarry-bench: same files, same machine, one warm-up and then `--runs`
timed runs per query, the median of those. Every answer is checked: against
tpch/answers/sf{SF}/ when `--sf` names a scale factor that has a folder there, otherwise
against DuckDB's answer from the same run. Numbers match within max(0.01, a millionth of
the expected value) as quarry-bench's check does, text exactly (trailing spaces stripped);
rows in order, except that rows tied on the query's ORDER BY keys may come in any order.
A wrong answer or a failed query makes the run exit non-zero and names the engine and query.

Engines (`--engines`, comma separated, default all three):
  duckdb      DuckDB, default settings (threads = cores)
  datafusion  Apache DataFusion's Python package, each table folder registered as a Parquet
              table, default settings except target_partitions = cores
  spark       Spark SQL in local mode, local[cores], each table folder a temp view, driver
              memory `--spark-driver-memory` (8g), Spark's other settings left at defaults

Install (pyspark 4 needs Java 17 or later on the PATH or in JAVA_HOME):

    python -m venv ~/.cache/quarry-compare-venv
    ~/.cache/quarry-compare-venv/bin/pip install duckdb==1.5.5 'datafusion==55.*' pyspark==4.3.0

Run, over data from `quarry tpch generate` (one folder of Parquet files per table):

    quarry tpch generate --sf 1 --out /tmp/tpch-1
    python benches/compare.py /tmp/tpch-1 --sf 1 [--engines duckdb,datafusion,spark]
        [--runs 3] [--queries 1,6] [--quarry benches/results/tpch-sf1-local.json]
        [--out FILE.json] [--answers-out DIR]

At a scale factor without reference answers, `--answers-out DIR` keeps DuckDB's answers,
and `quarry-bench tpch --sf 10 --answers DIR` checks Quarry's against them.

`--quarry` reads a quarry-bench JSON and adds Quarry's medians and the ratios Quarry/peer.
The markdown table goes to stdout, progress to stderr.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
LABELS = {"duckdb": "DuckDB", "datafusion": "DataFusion", "spark": "Spark"}
# Spark's JVM logs errors only, from its start on. PySpark's gateway counts as a shell,
# which announces its log level unless its own logger is configured too.
SPARK_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark %p %c: %m%n
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
"""


class DuckDB:
    def __init__(self, data_dir: str, cores: int) -> None:
        import duckdb

        self.con = duckdb.connect()
        for table in TABLES:
            self.con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{data_dir}/{table}/*.parquet')"
            )
        self.version = duckdb.__version__
        threads = self.con.execute("SELECT current_setting('threads')").fetchone()[0]
        self.settings = {"threads": threads}

    def run(self, sql: str) -> tuple:
        cursor = self.con.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()

    def close(self) -> None:
        self.con.close()


class DataFusion:
    def __init__(self, data_dir: str, cores: int) -> None:
        import datafusion

        config = datafusion.SessionConfig().with_target_partitions(cores)
        self.ctx = datafusion.SessionContext(config)
        for table in TABLES:
            self.ctx.register_parquet(table, f"{data_dir}/{table}/")
        self.version = datafusion.__version__
        self.settings = {"target_partitions": cores}

    def run(self, sql: str) -> tuple:
        frame = self.ctx.sql(sql)
        rows = []
        for batch in frame.collect():
            rows.extend(zip(*(column.to_pylist() for column in batch.columns)))
        return frame.schema().names, rows

    def close(self) -> None:
        pass


class Spark:
    def __init__(self, data_dir: str, cores: int, driver_memory: str) -> None:
        # Spark binds to the address the host name resolves to unless told otherwise.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from pyspark.sql import SparkSession

        self.log_config = tempfile.NamedTemporaryFile("w", suffix=".properties", delete=False)
        self.log_config.write(SPARK_LOG4J)
        self.log_config.close()
        self.settings = {
            "spark.master": f"local[{cores}]",
            "spark.driver.memory": driver_memory,
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
        }
        builder = SparkSession.builder.appName("quarry-compare")
        for key, value in self.settings.items():
            builder = builder.config(key, value)
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{self.log_config.name}"
        )
        self.spark = builder.getOrCreate()
        for table in TABLES:
            self.spark.read.parquet(f"{data_dir}/{table}").createOrReplaceTempView(table)
        java = self.spark.sparkContext._jvm.java.lang.System.getProperty("java.version")
        self.version = f"{self.spark.version} (Java {java})"
        for key in ["spark.sql.shuffle.partitions", "spark.sql.adaptive.enabled"]:
            self.settings[key] = self.spark.conf.get(key)

    def run(self, sql: str) -> tuple:
        frame = self.spark.sql(sql)
        return frame.columns, [tuple(row) for row in frame.collect()]

    def close(self) -> None:
        # stop() leaves the JVM running; it exits when the pipe to its stdin closes.
        gateway = self.spark.sparkContext._gateway
        self.spark.stop()
        gateway.shutdown()
        gateway.proc.stdin.close()
        gateway.proc.wait(timeout=120)
        os.unlink(self.log_config.name)


def text(value) -> str:
    """A value as make_answers.py writes it: NULL, str() of numbers and dates, text without
    trailing spaces."""
    return "NULL" if value is None else str(value).rstrip(" ")


def read_answer(path: str) -> list:
    with open(path) as f:
        lines = f.read().splitlines()[1:]
    return [[v.rstrip(" ") for v in line.split("|")] for line in lines if line.strip()]


def same_value(expected: str, actual: str) -> bool:
    if expected == actual:
        return True
    try:
        e, a = float(expected), float(actual)
    except ValueError:
        return False
    # Money is printed to the cent; averages and ratios are allowed a millionth.
    return abs(e - a) <= max(0.01, abs(e) * 1e-6)


def compare_rows(expected: list, actual: list):
    """None when the rows match in order, else what differs first."""
    if len(expected) != len(actual):
        return f"expected {len(expected)} rows, got {len(actual)}"
    for i, (e, a) in enumerate(zip(expected, actual)):
        if len(e) != len(a):
            return f"row {i + 1}: expected {len(e)} columns, got {len(a)}"
        for col, (ev, av) in enumerate(zip(e, a)):
            if not same_value(ev, av):
                return f"row {i + 1} column {col + 1}: expected {ev!r}, got {av!r}"
    return None


def sort_key(row: list) -> list:
    key = []
    for v in row:
        try:
            key.append((0, float(v), ""))
        except ValueError:
            key.append((1, 0.0, v))
    return key


def order_by(sql: str) -> list:
    """The output columns named by the query's final ORDER BY (lower case), [] without one."""
    parts = re.split(r"\border\s+by\b", sql, flags=re.IGNORECASE)
    if len(parts) < 2:
        return []
    items = re.split(r"\blimit\b|;", parts[-1], flags=re.IGNORECASE)[0]
    return [item.split()[0].lower() for item in items.split(",")]


def check(expected: list, actual: list, names: list, keys: list) -> str:
    """'ok' or 'ok (tied rows in another order)'; raises ValueError saying what differs.
    Rows tied on the ORDER BY keys may come in any order: when the in-order comparison
    fails, the answer still passes if the key columns match row by row and all the rows
    match once both sides are sorted."""
    error = compare_rows(expected, actual)
    if error is None:
        return "ok"
    names = [n.lower() for n in names]
    if all(k in names for k in keys):
        columns = [names.index(k) for k in keys]

        def project(rows):
            return [[row[c] for c in columns] for row in rows]

        if (compare_rows(project(expected), project(actual)) is None
                and compare_rows(sorted(expected, key=sort_key), sorted(actual, key=sort_key)) is None):
            return "ok (tied rows in another order)"
    raise ValueError(error)


def sf_folder(sf: str):
    if sf is None:
        return None
    folder = os.path.join(ROOT, "tpch", "answers", f"sf{float(sf):g}")
    return folder if os.path.isdir(folder) else None


def start(name: str, args, cores: int):
    if name == "duckdb":
        return DuckDB(args.data_dir, cores)
    if name == "datafusion":
        return DataFusion(args.data_dir, cores)
    return Spark(args.data_dir, cores, args.spark_driver_memory)


def write_answer(folder, n: int, names: list, rows: list) -> None:
    """Writes a reference answer as tpch/answers/ holds them: a header, `|`-separated rows."""
    if folder is None:
        return
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"q{n:02d}.csv"), "w") as f:
        f.write("|".join(names) + "\n")
        for row in rows:
            f.write("|".join(row) + "\n")


def measure(engine, name: str, queries: dict, references: dict, runs: int, failures: list,
            answers_out=None) -> list:
    """Per query: one run whose answer is checked (or kept as the reference, and written to
    `answers_out`), then `runs` timed runs."""
    results = []
    for n, sql in queries.items():
        try:
            names, rows = engine.run(sql)
            rows = [[text(v) for v in row] for row in rows]
            if references.get(n) is None:
                references[n] = rows
                write_answer(answers_out, n, names, rows)
                answer = "reference"
            else:
                answer = check(references[n], rows, names, order_by(sql))
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                engine.run(sql)
                times.append((time.perf_counter() - started) * 1000)
        except Exception as e:  # a wrong answer or the engine's own error
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            failures.append(f"{name} q{n:02d}: {message}")
            print(f"{name} q{n:02d}: FAILED: {message}", file=sys.stderr)
            results.append({"query": n, "median_ms": None, "runs_ms": [], "answer": f"failed: {message}"})
            continue
        median = round(statistics.median(times), 2)
        results.append({"query": n, "median_ms": median, "runs_ms": [round(t, 2) for t in times],
                        "rows": len(rows), "answer": answer})
        print(f"{name} q{n:02d}: {median:9.1f} ms  {answer}", file=sys.stderr)
    return results


def total(results: list):
    medians = [r["median_ms"] for r in results]
    return None if None in medians else round(sum(medians), 2)


def load_average() -> list:
    """The 1, 5 and 15 minute load averages: other work on the machine skews the timings."""
    return [round(v, 2) for v in os.getloadavg()]


def memory_gib() -> float:
    with open("/proc/meminfo") as f:
        kib = int(f.readline().split()[1])
    return round(kib / 1024 / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="folder with one sub-folder of Parquet files per table")
    parser.add_argument("--sf", help="scale factor of the data: picks tpch/answers/sf{SF}/ when there is one")
    parser.add_argument("--engines", default="duckdb,datafusion,spark")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per query after one warm-up")
    parser.add_argument("--queries", help="comma-separated query numbers (default 1 to 22)")
    parser.add_argument("--spark-driver-memory", default="8g")
    parser.add_argument("--quarry", help="a quarry-bench JSON to set beside the peers")
    parser.add_argument("--out", help="write all engines' results here as JSON")
    parser.add_argument("--answers-out", help="write the reference answers here (qNN.csv, as "
                        "tpch/answers/ holds them), for `quarry-bench tpch --answers` at "
                        "scale factors without reference answers")
    args = parser.parse_args()
    args.data_dir = os.path.abspath(args.data_dir)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in LABELS]
    if unknown or not engines:
        parser.error(f"unknown engine(s) {unknown}; choose from {', '.join(LABELS)}")
    numbers = [int(q) for q in args.queries.split(",")] if args.queries else list(range(1, 23))
    queries = {}
    for n in numbers:
        with open(os.path.join(ROOT, "tpch", "queries", f"q{n:02d}.sql")) as f:
            queries[n] = f.read()
    quarry = None
    if args.quarry:
        with open(args.quarry) as f:
            quarry = json.load(f)
        quarry_ms = {q["query"]: q["median_ms"] for q in quarry["queries"]}
        if args.sf is not None and float(quarry.get("sf", -1)) != float(args.sf):
            print(f"warning: {args.quarry} is SF {quarry.get('sf')}, this run SF {args.sf}", file=sys.stderr)

    cores = os.cpu_count() or 1
    load_start = load_average()
    started_at = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    answers = sf_folder(args.sf)
    if answers:
        references = {n: read_answer(os.path.join(answers, f"q{n:02d}.csv")) for n in queries}
        checked_against = os.path.relpath(answers, ROOT)
        print(f"answers checked against {checked_against}", file=sys.stderr)
    else:
        # DuckDB's answers of this run are the reference: DuckDB goes first, and runs
        # each query once untimed for that alone when it is not among the engines.
        references = {}
        checked_against = "DuckDB, same run"
        print("no reference answers for this scale factor: checked against DuckDB's", file=sys.stderr)
        if "duckdb" in engines:
            engines.remove("duckdb")
            engines.insert(0, "duckdb")
        else:
            reference = DuckDB(args.data_dir, cores)
            for n, sql in queries.items():
                names, rows = reference.run(sql)
                references[n] = [[text(v) for v in row] for row in rows]
                write_answer(args.answers_out, n, names, references[n])
            reference.close()

    failures = []
    report = []
    for name in engines:
        print(f"starting {name}", file=sys.stderr)
        engine_load_start = load_average()
        try:
            engine = start(name, args, cores)
        except Exception as e:
            failures.append(f"{name}: did not start: {e}")
            print(f"{name}: did not start: {e}", file=sys.stderr)
            continue
        results = measure(engine, name, queries, references, args.runs, failures,
                          args.answers_out)
        engine.close()
        report.append({"engine": name, "version": engine.version, "settings": engine.settings,
                       "total_median_ms": total(results),
                       "load_average_start": engine_load_start, "load_average_end": load_average(),
                       "queries": results})
    load_end = load_average()

    # The markdown table: each engine's medians, then Quarry's and Quarry/peer.
    def ms(value):
        return "failed" if value is None else f"{value:.1f}"

    def ratio(q, peer):
        return "" if q is None or not peer else f"{q / peer:.2f}"

    def ratio_value(q, peer):
        return float(ratio(q, peer)) if ratio(q, peer) else None

    header = ["query"] + [f"{LABELS[e['engine']]} ms" for e in report]
    if quarry:
        header += ["Quarry ms"] + [f"Quarry / {LABELS[e['engine']]}" for e in report]
    print(f"TPC-H SF {args.sf or '?'}: median of {args.runs} runs after a warm-up, {cores} cores; "
          f"answers checked against {checked_against}")
    print(", ".join(f"{LABELS[e['engine']]} {e['version']} {e['settings']}" for e in report))
    if quarry:
        print(f"Quarry: {args.quarry} (mode {quarry.get('mode')}, SF {quarry.get('sf')}), "
              "recorded by quarry-bench in its own run")
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---:|" * len(header))
    rows = [(str(n), [e["queries"][i]["median_ms"] for e in report], quarry_ms.get(n) if quarry else None)
            for i, n in enumerate(queries)]
    quarry_total = round(sum(quarry_ms.get(n) or 0 for n in queries), 2) if quarry else None
    rows.append(("total", [e["total_median_ms"] for e in report], quarry_total))
    for label, peers, q in rows:
        cells = [label] + [ms(p) for p in peers]
        if quarry:
            cells += [ms(q)] + [ratio(q, p) for p in peers]
        print("| " + " | ".join(cells) + " |")
    print(f"\nload average (1, 5, 15 min): {load_start} at the start, {load_end} at the end; per engine: "
          + ", ".join(f"{LABELS[e['engine']]} {e['load_average_start']} to {e['load_average_end']}" for e in report),
          flush=True)

    if args.out:
        out = {
            "date": started_at,
            "sf": float(args.sf) if args.sf else None,
            "data_dir": args.data_dir,
            "runs": args.runs,
            "answers": checked_against,
            "machine": {"cores": cores, "memory_gib": memory_gib(), "python": platform.python_version(),
                        "os": platform.platform()},
            "load_average_start": load_start,
            "load_average_end": load_end,
            "engines": report,
        }
        if quarry:
            out["quarry"] = {
                "file": args.quarry,
                "total_median_ms": quarry_total,
                "ratios": {e["engine"]: {"total": ratio_value(quarry_total, e["total_median_ms"]),
                                         "queries": {str(n): ratio_value(quarry_ms.get(n), q["median_ms"])
                                                     for n, q in zip(queries, e["queries"])}}
                           for e in report},
            }
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
        print(f"results written to {args.out}", file=sys.stderr)

    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
