//! The interactive shell and script runner (`-e`, `-f`, standard input).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use quarry_coordinator::split::{is_complete, split_statements};
use quarry_coordinator::{Engine, Output, Session};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::remote::Remote;
use crate::render::{self, Format};

/// Where statements come from and how results are printed.
pub struct Script {
    pub execute: Vec<String>,
    pub file: Option<PathBuf>,
    pub format: Format,
}

/// Where statements run: an engine in this process, or a running Quarry over pgwire.
pub enum Backend {
    Local(Session),
    Remote(Remote),
}

impl Backend {
    async fn execute(&self, sql: &str) -> Result<Output, String> {
        match self {
            Backend::Local(session) => session.execute(sql).await.map_err(|e| e.user_message()),
            Backend::Remote(remote) => remote.execute(sql).await,
        }
    }

    fn prompt(&self) -> String {
        match self {
            Backend::Local(session) => format!("quarry:{}> ", session.current_database()),
            Backend::Remote(remote) => format!("quarry@{}> ", remote.address),
        }
    }
}

/// Shell state that backslash commands change.
struct Shell {
    backend: Backend,
    format: Format,
    timing: bool,
    interactive: bool,
}

/// Runs the script options, or statements from standard input when it is not a terminal,
/// or else the interactive shell. The exit code is 1 when any statement failed.
pub async fn run(engine: Engine, script: Script) -> Result<ExitCode, String> {
    let session = engine.new_session().map_err(|e| e.user_message())?;
    run_on(Backend::Local(session), script).await
}

/// Like [`run`], on any backend.
pub async fn run_on(backend: Backend, script: Script) -> Result<ExitCode, String> {
    let mut shell = Shell {
        backend,
        format: script.format,
        timing: true,
        interactive: false,
    };
    let mut failed = false;
    if !script.execute.is_empty() || script.file.is_some() {
        for sql in &script.execute {
            failed |= !shell.run_text(sql).await;
        }
        if let Some(path) = &script.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            failed |= !shell.run_text(&text).await;
        }
    } else if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        failed |= !shell.run_text(&text).await;
    } else {
        shell.interactive = true;
        shell.repl().await?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".quarry_history"))
}

impl Shell {
    /// Runs every statement of a text; backslash commands are taken on lines of their own.
    /// Returns false when any statement failed.
    async fn run_text(&mut self, text: &str) -> bool {
        let mut ok = true;
        let mut pending = String::new();
        for line in text.lines() {
            if pending.trim().is_empty() && line.trim_start().starts_with('\\') {
                ok &= self.backslash(line.trim()).await;
                continue;
            }
            pending.push_str(line);
            pending.push('\n');
        }
        for statement in split_statements(&pending) {
            ok &= self.run_statement(&statement).await;
        }
        ok
    }

    async fn repl(&mut self) -> Result<(), String> {
        let mut editor =
            DefaultEditor::new().map_err(|e| format!("cannot open the terminal: {e}"))?;
        let history = history_path();
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        println!(
            "Quarry {} shell. End statements with ';'. \\? for help, \\q to quit.",
            env!("CARGO_PKG_VERSION")
        );
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                self.backend.prompt()
            } else {
                "     ...> ".to_string()
            };
            match editor.readline(&prompt) {
                Ok(line) => {
                    if buffer.is_empty() && line.trim_start().starts_with('\\') {
                        let _ = editor.add_history_entry(line.trim());
                        if matches!(line.trim(), "\\q" | "\\quit") {
                            break;
                        }
                        self.backslash(line.trim()).await;
                        continue;
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if is_complete(&buffer) {
                        let _ = editor.add_history_entry(buffer.trim());
                        let text = std::mem::take(&mut buffer);
                        for statement in split_statements(&text) {
                            self.run_statement(&statement).await;
                        }
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(format!("terminal error: {e}")),
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        Ok(())
    }

    async fn backslash(&mut self, command: &str) -> bool {
        let mut parts = command.splitn(2, char::is_whitespace);
        let name = parts.next().unwrap_or_default();
        let arg = parts.next().map(str::trim).filter(|a| !a.is_empty());
        match (name, arg) {
            ("\\q" | "\\quit", _) => true,
            ("\\l", _) => self.run_statement("SHOW DATABASES").await,
            ("\\dt", None) | ("\\d", None) => self.run_statement("SHOW TABLES").await,
            ("\\dt", Some(db)) => {
                self.run_statement(&format!("SHOW TABLES IN {}", db.trim_end_matches(".*")))
                    .await
            }
            ("\\d", Some(table)) => self.run_statement(&format!("DESCRIBE {table}")).await,
            ("\\timing", _) => {
                self.timing = match arg {
                    Some("on") => true,
                    Some("off") => false,
                    _ => !self.timing,
                };
                println!("Timing is {}.", if self.timing { "on" } else { "off" });
                true
            }
            ("\\?" | "\\h" | "\\help", _) => {
                println!(
                    "  \\l            list databases\n  \\dt [db]      list tables\n  \\d [table]    describe a table (or list tables)\n  \
                     \\timing [on|off]  show elapsed time\n  \\q            quit\n\
                     Statements end with ';'. Ctrl-C cancels a running query."
                );
                true
            }
            _ => {
                eprintln!("ERROR: unknown command {name}; \\? lists the commands");
                false
            }
        }
    }

    /// Runs one statement and prints its result or error. Returns false on error.
    async fn run_statement(&mut self, sql: &str) -> bool {
        let started = Instant::now();
        let result = if self.interactive {
            tokio::select! {
                result = self.execute(sql, started) => result,
                _ = tokio::signal::ctrl_c() => Err("query cancelled".to_string()),
            }
        } else {
            self.execute(sql, started).await
        };
        match result {
            Ok(()) => true,
            Err(message) => {
                eprintln!("ERROR: {message}");
                false
            }
        }
    }

    async fn execute(&self, sql: &str, started: Instant) -> Result<(), String> {
        let output = self.backend.execute(sql).await?;
        let mut stdout = std::io::stdout().lock();
        match output {
            Output::Done(tag) => {
                if self.format == Format::Table {
                    let _ = writeln!(stdout, "{tag}");
                }
            }
            Output::Rows(mut stream) => {
                let schema = stream.schema();
                let progress = Progress::new(self.interactive, started);
                let mut batches: Vec<RecordBatch> = Vec::new();
                while let Some(batch) = stream.next().await {
                    let batch = batch.map_err(|e| {
                        quarry_coordinator::CoordinatorError::from(e).user_message()
                    })?;
                    progress.add(&batch);
                    batches.push(batch);
                }
                drop(progress);
                render::write(&mut stdout, self.format, &schema, &batches)
                    .map_err(|e| e.to_string())?;
                if self.format == Format::Table {
                    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                    let noun = if rows == 1 { "row" } else { "rows" };
                    if self.timing {
                        let _ = writeln!(
                            stdout,
                            "({rows} {noun}, {:.3} s)",
                            started.elapsed().as_secs_f64()
                        );
                    } else {
                        let _ = writeln!(stdout, "({rows} {noun})");
                    }
                }
            }
        }
        let _ = stdout.flush();
        Ok(())
    }
}

/// A live line on standard error (rows, bytes, elapsed) once a query runs over a second.
struct Progress {
    state: Option<Arc<ProgressState>>,
}

struct ProgressState {
    rows: AtomicU64,
    bytes: AtomicU64,
    done: AtomicBool,
}

impl Progress {
    fn new(interactive: bool, started: Instant) -> Self {
        if !(interactive && std::io::stderr().is_terminal()) {
            return Self { state: None };
        }
        let state = Arc::new(ProgressState {
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            done: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            while !shared.done.load(Ordering::Relaxed) {
                bar.set_message(format!(
                    "{} rows, {}, {:.1} s  (Ctrl-C cancels)",
                    shared.rows.load(Ordering::Relaxed),
                    indicatif::HumanBytes(shared.bytes.load(Ordering::Relaxed)),
                    started.elapsed().as_secs_f64()
                ));
                bar.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            bar.finish_and_clear();
        });
        Self { state: Some(state) }
    }

    fn add(&self, batch: &RecordBatch) {
        if let Some(state) = &self.state {
            state
                .rows
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            state
                .bytes
                .fetch_add(batch.get_array_memory_size() as u64, Ordering::Relaxed);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            state.done.store(true, Ordering::Relaxed);
        }
    }
}
