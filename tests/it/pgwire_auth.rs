//! The front door's security: TLS (`--tls-cert`, `--tls-key`, `--require-tls`), SCRAM-SHA-256
//! users kept in the metastore, and the coordinator's first administrator. Driven by psql
//! and tokio-postgres against real `quarry` processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tokio_postgres::NoTls;

use crate::pgwire::Server;

/// A certificate authority and a server certificate it signed for `localhost` and
/// 127.0.0.1, as PEM files in a temporary directory.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn new() -> Certificates {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Quarry test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params.use_authority_key_identifier_extension = true;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        Certificates { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `--tls-cert ... --tls-key ...`.
    fn options(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.path("server.pem").display().to_string(),
            "--tls-key".into(),
            self.path("server.key").display().to_string(),
        ]
    }
}

/// psql with a connection string (`host=... sslmode=...`) and PGPASSWORD when given.
fn psql(connection: &str, password: Option<&str>, commands: &[&str]) -> Output {
    let mut command = Command::new("psql");
    command.args([
        "-X",
        "-w",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        connection,
    ]);
    for c in commands {
        command.args(["-c", c]);
    }
    // Never prompt, never read a password file.
    command
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", "/nonexistent")
        .stdin(std::process::Stdio::null());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.output().expect("psql runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Connects with tokio-postgres (no TLS): the client, or the server's error.
async fn connect(
    port: u16,
    user: &str,
    password: Option<&str>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .dbname("quarry");
    if let Some(password) = password {
        config.password(password);
    }
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The SQLSTATE and message of a failed connection or statement.
fn db_error(error: &tokio_postgres::Error) -> (String, String) {
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("not an error from the server: {error}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// The first column of the first row of a simple query.
async fn value(client: &tokio_postgres::Client, sql: &str) -> String {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no row from {sql}"))
}

fn string_options(options: &[String]) -> Vec<&str> {
    options.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_offered_verified_and_required() {
    let certs = Certificates::new();
    let mut options = certs.options();
    options.push("--require-tls".into());
    options.push("--no-tpch".into());
    let data = tempfile::tempdir().unwrap();
    let server = Server::launch(&["local"], data.path(), &string_options(&options), &[])
        .unwrap_or_else(|e| panic!("quarry local did not start: {e}"));
    assert!(
        server.banner.contains("connections are trusted") && server.banner.contains("TLS required"),
        "{}",
        server.banner
    );

    // psql verifies the certificate against the CA and the host name; the session is
    // encrypted, and the trusted user name is the session's user.
    let connection = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=alice dbname=quarry sslmode=verify-full sslrootcert={}",
        server.port,
        certs.path("ca.pem").display()
    );
    let out = psql(&connection, None, &["\\conninfo", "SELECT current_user"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("SSL connection (protocol: TLSv1."),
        "not encrypted: {text}"
    );
    assert!(text.ends_with("alice\n"), "{text}");

    // Plaintext is refused with PostgreSQL's hostssl-only answer.
    let out = psql(
        &format!(
            "host=127.0.0.1 port={} user=alice sslmode=disable",
            server.port
        ),
        None,
        &["SELECT 1"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("this server requires TLS"),
        "{}",
        stderr(&out)
    );
    let refused = connect(server.port, "alice", None).await.err().unwrap();
    let (code, message) = db_error(&refused);
    assert_eq!(code, "28000");
    assert!(message.contains("--require-tls"), "{message}");

    // A client that trusts another CA does not accept this server.
    let other = Certificates::new();
    let out = psql(
        &format!(
            "host=localhost hostaddr=127.0.0.1 port={} user=alice sslmode=verify-full sslrootcert={}",
            server.port,
            other.path("ca.pem").display()
        ),
        None,
        &["SELECT 1"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("certificate verify failed"),
        "{}",
        stderr(&out)
    );

    // Quarry's own shell: TLS by default (as psql's sslmode=prefer), verified on request,
    // and refused in plaintext like psql.
    let shell = |options: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(["shell", "--host", "localhost", "--port"])
            .arg(server.port.to_string())
            .args(["-U", "alice", "--format", "csv"])
            .args(options)
            .args(["-e", "SELECT current_user AS u"])
            .output()
            .unwrap()
    };
    let ca = certs.path("ca.pem").display().to_string();
    for options in [
        &[][..],
        &["--sslmode", "require"],
        &["--sslmode", "verify-full", "--sslrootcert", &ca],
    ] {
        let out = shell(options);
        assert!(out.status.success(), "{options:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "u\nalice\n", "{options:?}");
    }
    let out = shell(&["--sslmode", "disable"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--require-tls"), "{}", stderr(&out));
    let other_ca = other.path("ca.pem").display().to_string();
    let out = shell(&["--sslmode", "verify-full", "--sslrootcert", &other_ca]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot connect to localhost"),
        "{}",
        stderr(&out)
    );
    let out = shell(&["--sslmode", "verify-full"]);
    assert!(
        stderr(&out).contains("needs --sslrootcert"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unusable_certificate_or_key_stops_the_start_naming_the_file() {
    let certs = Certificates::new();
    let data = tempfile::tempdir().unwrap();
    let start = |cert: &Path, key: &Path| {
        Server::launch(
            &["local", "--no-tpch"],
            data.path(),
            &[
                "--tls-cert",
                &cert.display().to_string(),
                "--tls-key",
                &key.display().to_string(),
            ],
            &[],
        )
        .err()
        .expect("the server must not start")
    };
    let missing = certs.path("missing.pem");
    let error = start(&missing, &certs.path("server.key"));
    assert!(
        error.contains("cannot read TLS certificate")
            && error.contains(&missing.display().to_string()),
        "{error}"
    );

    let garbage = certs.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let error = start(&garbage, &certs.path("server.key"));
    assert!(
        error.contains("TLS certificate") && error.contains(&garbage.display().to_string()),
        "{error}"
    );

    // The CA's certificate with the server's key: a pair that does not match.
    let error = start(&certs.path("ca.pem"), &certs.path("server.key"));
    assert!(
        error.contains("do not work together") && error.contains("ca.pem"),
        "{error}"
    );

    let error = start(&certs.path("server.pem"), &garbage);
    assert!(
        error.contains("TLS key") && error.contains(&garbage.display().to_string()),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_are_created_altered_dropped_and_kept() {
    let certs = Certificates::new();
    let data = tempfile::tempdir().unwrap();
    let mut options = certs.options();
    options.extend(["--auth", "scram", "--admin-user", "boss", "--no-tpch"].map(String::from));
    let server = Server::launch(
        &["local"],
        data.path(),
        &string_options(&options),
        &[("QUARRY_ADMIN_PASSWORD", "first-Secret")],
    )
    .unwrap_or_else(|e| panic!("quarry local --auth scram did not start: {e}"));
    assert!(
        server
            .banner
            .contains("passwords are required (SCRAM-SHA-256)")
            && server.banner.contains("TLS offered"),
        "{}",
        server.banner
    );
    let port = server.port;

    // The administrator logs in with the password, over plaintext and over TLS with
    // SCRAM-SHA-256-PLUS, bound to the certificate (channel_binding=require).
    let boss = connect(port, "boss", Some("first-Secret")).await.unwrap();
    assert_eq!(value(&boss, "SELECT current_user").await, "boss");
    let out = psql(
        &format!(
            "host=localhost hostaddr=127.0.0.1 port={port} user=boss dbname=quarry sslmode=verify-full channel_binding=require sslrootcert={}",
            certs.path("ca.pem").display()
        ),
        Some("first-Secret"),
        &["\\conninfo", "SELECT current_user"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("SSL connection"), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("boss\n"), "{}", stdout(&out));

    // A wrong password and an unknown user get the same answer.
    for (user, password) in [("boss", "wrong"), ("nobody", "first-Secret")] {
        let error = connect(port, user, Some(password)).await.err().unwrap();
        assert_eq!(
            db_error(&error),
            (
                "28P01".to_string(),
                format!("password authentication failed for user \"{user}\"")
            )
        );
    }
    let out = psql(
        &format!("host=127.0.0.1 port={port} user=boss sslmode=disable"),
        Some("wrong"),
        &["SELECT 1"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("password authentication failed for user \"boss\""),
        "{}",
        stderr(&out)
    );

    // CREATE USER; a second one of the same name is 42710.
    boss.batch_execute("CREATE USER carol WITH PASSWORD 'c4rol''s pass'")
        .await
        .unwrap();
    let error = boss
        .batch_execute("CREATE USER carol PASSWORD 'x'")
        .await
        .unwrap_err();
    assert_eq!(
        db_error(&error),
        (
            "42710".to_string(),
            "role \"carol\" already exists".to_string()
        )
    );
    let carol = connect(port, "carol", Some("c4rol's pass")).await.unwrap();
    assert_eq!(value(&carol, "SELECT current_user").await, "carol");

    // carol is no administrator: she cannot create or drop users, but may change her
    // own password; the old one stops working.
    let error = carol
        .batch_execute("CREATE USER mallory PASSWORD 'm'")
        .await
        .unwrap_err();
    assert_eq!(db_error(&error).0, "42501");
    let error = carol.batch_execute("DROP USER boss").await.unwrap_err();
    assert_eq!(db_error(&error).0, "42501");
    let error = carol
        .batch_execute("ALTER USER carol SUPERUSER")
        .await
        .unwrap_err();
    assert_eq!(db_error(&error).0, "42501");
    carol
        .batch_execute("ALTER USER carol PASSWORD 'second'")
        .await
        .unwrap();
    let error = connect(port, "carol", Some("c4rol's pass"))
        .await
        .err()
        .unwrap();
    assert_eq!(db_error(&error).0, "28P01");
    let carol = connect(port, "carol", Some("second")).await.unwrap();

    // A verifier as psql's \password sends it is refused, not taken as the password.
    let error = carol
        .batch_execute("ALTER USER carol PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy'")
        .await
        .unwrap_err();
    assert_eq!(db_error(&error).0, "22023");
    assert!(db_error(&error).1.contains("pre-hashed"), "{error}");

    // The administrator changes it again, and makes carol an administrator.
    boss.batch_execute("ALTER USER carol WITH PASSWORD 'third' SUPERUSER")
        .await
        .unwrap();
    assert_eq!(
        db_error(&connect(port, "carol", Some("second")).await.err().unwrap()).0,
        "28P01"
    );
    let carol_admin = connect(port, "carol", Some("third")).await.unwrap();
    carol_admin
        .batch_execute("CREATE USER dave PASSWORD 'dave-pw'")
        .await
        .unwrap();
    drop(carol);

    // Unknown users: 42704; IF EXISTS is quiet.
    let error = boss
        .batch_execute("ALTER USER nobody PASSWORD 'x'")
        .await
        .unwrap_err();
    assert_eq!(
        db_error(&error),
        (
            "42704".to_string(),
            "role \"nobody\" does not exist".to_string()
        )
    );
    let error = boss.batch_execute("DROP USER nobody").await.unwrap_err();
    assert_eq!(db_error(&error).0, "42704");
    boss.batch_execute("DROP USER IF EXISTS nobody")
        .await
        .unwrap();

    // DROP USER: dave can no longer log in.
    boss.batch_execute("DROP USER dave").await.unwrap();
    assert_eq!(
        db_error(&connect(port, "dave", Some("dave-pw")).await.err().unwrap()).0,
        "28P01"
    );

    // Passwords never show in the query log.
    let log = boss
        .simple_query("SELECT query FROM system.runtime.queries")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        log.contains("CREATE USER carol WITH PASSWORD '***'"),
        "{log}"
    );
    for secret in ["c4rol", "second", "third", "dave-pw"] {
        assert!(!log.contains(secret), "{secret} is in the log: {log}");
    }

    // Users survive a restart, which needs no --admin-user once users exist.
    drop(boss);
    drop(carol_admin);
    drop(server);
    let server = Server::launch(
        &["local", "--auth", "scram", "--no-tpch"],
        data.path(),
        &[],
        &[],
    )
    .unwrap_or_else(|e| panic!("restart failed: {e}"));
    let carol = connect(server.port, "carol", Some("third")).await.unwrap();
    assert_eq!(value(&carol, "SELECT current_user").await, "carol");
    let boss = connect(server.port, "boss", Some("first-Secret"))
        .await
        .unwrap();
    assert_eq!(value(&boss, "SELECT 40 + 2").await, "42");
    assert_eq!(
        db_error(
            &connect(server.port, "dave", Some("dave-pw"))
                .await
                .err()
                .unwrap()
        )
        .0,
        "28P01"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_requires_passwords_and_a_first_administrator() {
    let data = tempfile::tempdir().unwrap();
    let scheduler = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    let secret = ("QUARRY_CLUSTER_SECRET", "auth-test-cluster-secret-0123");
    let start = |options: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--no-tpch", "--scheduler-listen", &scheduler];
        all.extend_from_slice(options);
        Server::launch(&["coordinator"], data.path(), &all, env)
    };

    // Nobody could log in: a clear startup failure that says how.
    let error = start(&[], &[secret]).err().expect("must not start");
    assert!(
        error.contains("--admin-user") && error.contains("QUARRY_ADMIN_PASSWORD"),
        "{error}"
    );
    let error = start(&["--admin-user", "root"], &[secret])
        .err()
        .expect("must not start without the password");
    assert!(error.contains("QUARRY_ADMIN_PASSWORD"), "{error}");

    let server = start(
        &["--admin-user", "root"],
        &[secret, ("QUARRY_ADMIN_PASSWORD", "r00t-pass")],
    )
    .unwrap_or_else(|e| panic!("the coordinator did not start: {e}"));
    assert!(
        server.banner.contains("passwords are required") && !server.banner.contains("trusted"),
        "{}",
        server.banner
    );
    let root = connect(server.port, "root", Some("r00t-pass"))
        .await
        .unwrap();
    assert_eq!(value(&root, "SELECT current_user").await, "root");
    let error = connect(server.port, "root", Some("guess"))
        .await
        .err()
        .unwrap();
    assert_eq!(db_error(&error).0, "28P01");
    // psql without a password is asked for one and cannot give it.
    let out = psql(
        &format!("host=127.0.0.1 port={} user=root", server.port),
        None,
        &["SELECT 1"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("password"), "{}", stderr(&out));
}
