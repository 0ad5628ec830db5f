-- Users of the PostgreSQL front end (CREATE USER name PASSWORD '...'). Same portability
-- rules as 0001: VARCHAR keys, flags and counters as BIGINT, timestamps as RFC 3339 text.
-- No password is stored: only its SCRAM-SHA-256 verifier (RFC 5802), the salt and
-- iteration count with SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations),
-- hex-encoded.
CREATE TABLE mst_users (
    name            VARCHAR(128) NOT NULL PRIMARY KEY,
    scram_salt      VARCHAR(128) NOT NULL,
    scram_iterations BIGINT NOT NULL,
    scram_salted_password VARCHAR(128) NOT NULL,
    -- 1: may create, alter and drop users
    admin           BIGINT NOT NULL,
    created_at      VARCHAR(40) NOT NULL,
    updated_at      VARCHAR(40) NOT NULL
);
