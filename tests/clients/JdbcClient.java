// pgjdbc against a running Quarry: a prepared statement executed past pgjdbc's prepare
// threshold (so later executions use a named server statement and binary results) and the
// DatabaseMetaData calls tools make. Usage: java -cp postgresql.jar:. JdbcClient PORT
// Exits 1 with the first mismatch.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;

public class JdbcClient {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("MISMATCH: " + what);
            System.exit(1);
        }
    }

    // What a BI tool does over pgjdbc (Tableau, DBeaver): metadata of a query from a
    // prepared statement that is never executed, a `WHERE 1=0` probe, a filter list in a
    // temporary table filled by a batch of inserts, and a large result read with autocommit
    // off and a fetch size, which pgjdbc reads through a portal in chunks.
    static void biToolSession(Connection conn) throws Exception {
        try (PreparedStatement ps = conn.prepareStatement(
                 "SELECT o_orderkey, o_totalprice, o_orderdate FROM tpch.orders WHERE o_custkey = ?")) {
            ResultSetMetaData md = ps.getMetaData();
            String shape = md.getColumnCount() + " " + md.getColumnName(1) + ":" + md.getColumnTypeName(1)
                + " " + md.getColumnName(2) + ":" + md.getColumnTypeName(2)
                + " " + md.getColumnName(3) + ":" + md.getColumnTypeName(3);
            check(shape.equals("3 o_orderkey:int8 o_totalprice:numeric o_orderdate:date"), "unexecuted metadata " + shape);
            check(ps.getParameterMetaData().getParameterType(1) == Types.BIGINT,
                  "parameter type " + ps.getParameterMetaData().getParameterTypeName(1));
        }
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT * FROM tpch.region WHERE 1=0")) {
            check(!rs.next(), "WHERE 1=0 has no rows");
            ResultSetMetaData md = rs.getMetaData();
            check(md.getColumnCount() == 3 && md.getColumnName(2).equals("r_name")
                  && md.getColumnType(1) == Types.BIGINT, "WHERE 1=0 columns");
        }

        try (Statement st = conn.createStatement()) {
            st.execute("CREATE LOCAL TEMPORARY TABLE \"#Tableau_1_Filter\" (\"n_name\" TEXT) ON COMMIT PRESERVE ROWS");
        }
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO \"#Tableau_1_Filter\" (\"n_name\") VALUES (?)")) {
            for (String name : new String[] {"FRANCE", "GERMANY", "JAPAN"}) {
                ps.setString(1, name);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            check(counts.length == 3 && counts[0] == 1 && counts[2] == 1, "batch insert counts " + java.util.Arrays.toString(counts));
        }
        List<String> filtered = new ArrayList<>();
        List<String> direct = new ArrayList<>();
        String byNation = "SELECT n.n_name, count(*) FROM tpch.customer c JOIN tpch.nation n ON c.c_nationkey = n.n_nationkey ";
        try (Statement st = conn.createStatement()) {
            try (ResultSet rs = st.executeQuery(byNation
                     + "JOIN \"#Tableau_1_Filter\" f ON n.n_name = f.n_name GROUP BY n.n_name ORDER BY 1")) {
                while (rs.next()) filtered.add(rs.getString(1) + "=" + rs.getLong(2));
            }
            try (ResultSet rs = st.executeQuery(byNation
                     + "WHERE n.n_name IN ('FRANCE', 'GERMANY', 'JAPAN') GROUP BY n.n_name ORDER BY 1")) {
                while (rs.next()) direct.add(rs.getString(1) + "=" + rs.getLong(2));
            }
            check(filtered.size() == 3 && filtered.equals(direct), "temp filter " + filtered + " vs " + direct);
            st.execute("DROP TABLE \"#Tableau_1_Filter\"");
        }
        System.out.println("temp table filter: " + filtered);

        long expectedRows;
        long expectedSum;
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT count(*), sum(l_orderkey) FROM tpch.lineitem")) {
            check(rs.next(), "lineitem totals");
            expectedRows = rs.getLong(1);
            expectedSum = rs.getLong(2);
        }
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            st.setFetchSize(1000);
            long rows = 0;
            long sum = 0;
            try (ResultSet rs = st.executeQuery("SELECT l_orderkey, l_comment FROM tpch.lineitem")) {
                while (rs.next()) {
                    rows++;
                    sum += rs.getLong(1);
                }
            }
            check(rows == expectedRows && sum == expectedSum,
                  "fetch-size read " + rows + " rows, sum " + sum + "; expected " + expectedRows + ", " + expectedSum);
            System.out.println("fetch-size read: " + rows + " rows");
        }
        conn.commit();
        conn.setAutoCommit(true);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/quarry?user=jdbc&ApplicationName=jdbc_test";
        try (Connection conn = DriverManager.getConnection(url)) {
            DatabaseMetaData meta = conn.getMetaData();
            check(meta.getDatabaseProductName().equals("PostgreSQL"), "product " + meta.getDatabaseProductName());
            check(meta.getDatabaseMajorVersion() == 15, "major version " + meta.getDatabaseMajorVersion());

            // Reference answers computed by the simple protocol, compared to the prepared runs.
            List<String> expected = new ArrayList<>();
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery(
                     "SELECT n_regionkey, count(*), min(n_name) FROM tpch.nation GROUP BY n_regionkey ORDER BY n_regionkey")) {
                while (rs.next()) {
                    expected.add(rs.getLong(1) + "|" + rs.getLong(2) + "|" + rs.getString(3));
                }
            }
            check(expected.size() == 5, "5 regions, got " + expected);

            // Seven executions: pgjdbc switches to a named statement and binary results at the fifth.
            try (PreparedStatement ps = conn.prepareStatement(
                     "SELECT count(*), min(n_name), sum(n_nationkey) FROM tpch.nation WHERE n_regionkey = ?")) {
                for (int run = 0; run < 7; run++) {
                    int region = run % 5;
                    ps.setLong(1, region);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "a row for region " + region);
                        String got = region + "|" + rs.getLong(1) + "|" + rs.getString(2);
                        check(got.equals(expected.get(region)), "run " + run + ": " + got + " != " + expected.get(region));
                        check(!rs.next(), "one row");
                    }
                }
                check(ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare(), "server-prepared after 5 runs");
            }

            // Typed values: decimal, date, text, integer, in binary after the threshold too.
            try (PreparedStatement ps = conn.prepareStatement(
                     "SELECT o_orderkey, o_totalprice, o_orderdate, o_orderstatus FROM tpch.orders WHERE o_orderkey = ?")) {
                String first = null;
                for (int run = 0; run < 7; run++) {
                    ps.setLong(1, 1);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "order 1 exists");
                        BigDecimal price = rs.getBigDecimal(2);
                        check(price.scale() == 2, "o_totalprice scale 2, got " + price);
                        String got = rs.getLong(1) + "|" + price + "|" + rs.getDate(3) + "|" + rs.getString(4);
                        if (first == null) first = got;
                        check(got.equals(first), "run " + run + ": " + got + " != " + first);
                        ResultSetMetaData md = rs.getMetaData();
                        check(md.getColumnType(2) == Types.NUMERIC, "o_totalprice is NUMERIC, got " + md.getColumnTypeName(2));
                        check(md.getPrecision(2) == 15 && md.getScale(2) == 2,
                              "o_totalprice numeric(15,2), got (" + md.getPrecision(2) + "," + md.getScale(2) + ")");
                        check(md.getColumnType(3) == Types.DATE, "o_orderdate is DATE, got " + md.getColumnTypeName(3));
                    }
                }
                System.out.println("order 1: " + first);
            }

            // Result columns name their table and base column: pgjdbc looks them up in pg_class
            // and pg_attribute by the table OID and column number RowDescription carries.
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery(
                     "SELECT o_orderkey AS k, o_comment, count(*) OVER () AS n FROM tpch.orders LIMIT 1")) {
                org.postgresql.PGResultSetMetaData md =
                    rs.getMetaData().unwrap(org.postgresql.PGResultSetMetaData.class);
                ResultSetMetaData std = rs.getMetaData();
                String origins = md.getBaseSchemaName(1) + "." + std.getTableName(1) + "." + md.getBaseColumnName(1)
                    + " " + md.getBaseTableName(2) + "." + md.getBaseColumnName(2)
                    + " '" + std.getTableName(3) + "'";
                check(origins.equals("tpch.orders.o_orderkey orders.o_comment ''"), "column origins " + origins);
                System.out.println("column origins: " + origins);
            }

            // DatabaseMetaData, as DBeaver/DataGrip/Tableau's JDBC path ask it.
            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = meta.getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            check(schemas.contains("tpch") && schemas.contains("default"), "schemas " + schemas);

            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "tpch", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            check(tables.size() == 8 && tables.contains("lineitem") && tables.contains("region"), "tpch tables " + tables);

            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "tpch", "orders", "%")) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME") + ":" + rs.getInt("ORDINAL_POSITION"));
                    if (rs.getString("COLUMN_NAME").equals("o_totalprice")) {
                        check(rs.getInt("DATA_TYPE") == Types.NUMERIC, "o_totalprice DATA_TYPE");
                        check(rs.getInt("COLUMN_SIZE") == 15 && rs.getInt("DECIMAL_DIGITS") == 2,
                              "o_totalprice size/digits " + rs.getInt("COLUMN_SIZE") + "/" + rs.getInt("DECIMAL_DIGITS"));
                    }
                }
            }
            check(columns.size() == 9, "orders has 9 columns: " + columns);
            check(columns.get(0).startsWith("o_orderkey:") && columns.get(0).endsWith(":1"), "first column " + columns.get(0));
            System.out.println("orders columns: " + columns);

            try (ResultSet rs = meta.getPrimaryKeys(null, "tpch", "orders")) {
                check(!rs.next(), "no primary key on an external table");
            }
            List<String> types = new ArrayList<>();
            try (ResultSet rs = meta.getTypeInfo()) {
                while (rs.next()) types.add(rs.getString("TYPE_NAME"));
            }
            check(types.contains("int4") && types.contains("numeric") && types.contains("text") && types.contains("date"),
                  "type info " + types);
            biToolSession(conn);
            System.out.println("jdbc ok");
        }
    }
}
