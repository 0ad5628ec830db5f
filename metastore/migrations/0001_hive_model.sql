-- Hive's data model: databases hold tables; tables hold partitions.
-- Nested parts of a table (columns, storage descriptor, properties, statistics) are JSON
-- documents: they are always read and written with their table.
CREATE TABLE databases (
    name        TEXT PRIMARY KEY NOT NULL,
    location    TEXT NOT NULL,
    description TEXT,
    properties  TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);

CREATE TABLE tables (
    database_name  TEXT NOT NULL REFERENCES databases(name),
    name           TEXT NOT NULL,
    table_type     TEXT NOT NULL,
    columns        TEXT NOT NULL,
    partition_keys TEXT NOT NULL,
    storage        TEXT NOT NULL,
    properties     TEXT NOT NULL DEFAULT '{}',
    view_sql       TEXT,
    statistics     TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (database_name, name)
);

CREATE TABLE partitions (
    database_name TEXT NOT NULL,
    table_name    TEXT NOT NULL,
    -- `k1=v1/k2=v2`, the name Hive shows in SHOW PARTITIONS
    spec          TEXT NOT NULL,
    "values"      TEXT NOT NULL,
    location      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (database_name, table_name, spec),
    FOREIGN KEY (database_name, table_name) REFERENCES tables(database_name, name)
);
