-- Connector catalogs (CREATE CATALOG name USING postgres WITH (...)). Options are a JSON
-- document; secret ones (the password) are sealed with the master key before they get here.
CREATE TABLE mst_catalogs (
    name       VARCHAR(128) NOT NULL PRIMARY KEY,
    connector  VARCHAR(40) NOT NULL,
    options    TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at VARCHAR(40) NOT NULL
);
