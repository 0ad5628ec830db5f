-- Crawlers (issue 6): their definitions, what they saw last time, and their runs.
-- Same portability rules as 0001: VARCHAR keys, TEXT documents without defaults, counters
-- as BIGINT, timestamps as RFC 3339 text.
CREATE TABLE mst_crawlers (
    name        VARCHAR(128) NOT NULL PRIMARY KEY,
    -- the crawler's definition (location, target database, options), a JSON document
    definition  TEXT NOT NULL,
    -- what the last run saw, per folder (fingerprints and schemas), a JSON document: a
    -- cache that makes re-runs incremental; losing it only makes the next run read more
    state       TEXT,
    -- set while a run holds the crawler (any process); a claim older than a few hours is
    -- from a process that stopped and may be taken over
    running_since VARCHAR(40),
    created_at  VARCHAR(40) NOT NULL,
    updated_at  VARCHAR(40) NOT NULL
);

CREATE TABLE mst_crawler_runs (
    crawler            VARCHAR(128) NOT NULL,
    run_id             VARCHAR(64) NOT NULL,
    started_at         VARCHAR(40) NOT NULL,
    finished_at        VARCHAR(40),
    -- RUNNING, SUCCEEDED, SUCCEEDED_WITH_ERRORS, FAILED
    status             VARCHAR(40) NOT NULL,
    objects_listed     BIGINT NOT NULL,
    objects_read       BIGINT NOT NULL,
    tables_created     BIGINT NOT NULL,
    tables_updated     BIGINT NOT NULL,
    tables_deleted     BIGINT NOT NULL,
    partitions_added   BIGINT NOT NULL,
    partitions_removed BIGINT NOT NULL,
    -- one problem per line, each naming its object key
    errors             TEXT NOT NULL,
    -- why folders were grouped into tables or split, schema changes seen, one per line
    log                TEXT NOT NULL,
    PRIMARY KEY (crawler, run_id)
);
