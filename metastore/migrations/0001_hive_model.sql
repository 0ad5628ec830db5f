-- Hive's data model: databases hold tables; tables hold partitions.
-- Nested parts of a table (columns, storage descriptor, properties, statistics) are JSON
-- documents: they are always read and written with their table.
-- Tables are prefixed mst_ (DATABASES is a reserved word in MySQL).
-- Portable across SQLite, PostgreSQL and MySQL/MariaDB: names are VARCHAR (Hive caps them
-- at 128 characters) so they can be keys on MySQL, documents are TEXT without defaults.
CREATE TABLE mst_databases (
    name        VARCHAR(128) NOT NULL PRIMARY KEY,
    location    TEXT NOT NULL,
    description TEXT,
    properties  TEXT NOT NULL,
    created_at  VARCHAR(40) NOT NULL
);

CREATE TABLE mst_tables (
    database_name  VARCHAR(128) NOT NULL REFERENCES mst_databases(name),
    name           VARCHAR(128) NOT NULL,
    table_type     VARCHAR(20) NOT NULL,
    columns        TEXT NOT NULL,
    partition_keys TEXT NOT NULL,
    storage        TEXT NOT NULL,
    properties     TEXT NOT NULL,
    view_sql       TEXT,
    statistics     TEXT,
    created_at     VARCHAR(40) NOT NULL,
    updated_at     VARCHAR(40) NOT NULL,
    PRIMARY KEY (database_name, name)
);

CREATE TABLE mst_partitions (
    database_name VARCHAR(128) NOT NULL,
    table_name    VARCHAR(128) NOT NULL,
    -- `k1=v1/k2=v2`, the name Hive shows in SHOW PARTITIONS
    spec          VARCHAR(500) NOT NULL,
    part_values   TEXT NOT NULL,
    location      TEXT NOT NULL,
    created_at    VARCHAR(40) NOT NULL,
    PRIMARY KEY (database_name, table_name, spec),
    FOREIGN KEY (database_name, table_name) REFERENCES mst_tables(database_name, name)
);
