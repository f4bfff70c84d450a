//! One service as a process of its own, so that a test can SIGKILL it at any moment: no
//! shutdown, no final flush, its connections dropped by the kernel — what a crash or an OOM
//! kill does to a pod.
//!
//! The test binary is its own child: run with [`CHILD`] set to
//! `<service>:<database>:<subscription>`, [`child_main`] runs that service's real wiring
//! (`service::run`, as `main` does) on a port of its own against the local stack, in the test
//! namespace, and serves until it is killed. [`ServiceProcess::start`] starts one and waits
//! until it is ready; `fault` is handed over as `ALPES_FAULT` (see `alpes_bus::fault`).

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use alpes_bus::Shutdown;
use alpes_runtime::config::CommonArgs;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use alpes_testkit::namespace;

/// The variable that makes this binary a service process.
pub const CHILD: &str = "ALPES_E2E_SERVICE_CHILD";

/// Within this a started service must be ready, and a line must appear.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Runs the service `spec` names until the process is killed.
pub fn child_main(spec: &str) -> ExitCode {
    let mut parts = spec.splitn(3, ':');
    let (Some(service), Some(database), Some(subscription)) =
        (parts.next(), parts.next(), parts.next())
    else {
        eprintln!("{CHILD}={spec}: expected <service>:<database>:<subscription>");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(serve(service, database, subscription)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{service} stopped: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(service: &str, database: &str, subscription: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let common = CommonArgs {
        pulsar_namespace: namespace(),
        ..CommonArgs::for_tests(addr)
    };
    let (database, subscription) = (database.to_owned(), subscription.to_owned());
    println!("LISTENING {addr}");
    // Never cancelled: the process ends by SIGKILL.
    let stop = Shutdown::new();
    match service {
        "tracking" => {
            let config = alpes_tracking::service::Config {
                common,
                database,
                subscription,
            };
            alpes_tracking::service::run(config, listener, stop).await
        }
        "attribution" => {
            let config = alpes_attribution::service::Config {
                common,
                database,
                subscription,
            };
            alpes_attribution::service::run(config, listener, stop).await
        }
        "commission" => {
            let config = alpes_commission::service::Config {
                common,
                database,
                subscription,
            };
            alpes_commission::service::run(config, listener, stop).await
        }
        other => anyhow::bail!("no service {other} runs as a process of its own"),
    }
}

/// A service running in a child process.
pub struct ServiceProcess {
    /// The base URL of its HTTP API.
    pub url: String,
    service: &'static str,
    child: Child,
    /// Its standard output and error, line by line.
    lines: mpsc::UnboundedReceiver<String>,
}

impl ServiceProcess {
    /// Starts `service` on MongoDB database `database` with Pulsar subscription
    /// `subscription` and, if given, `ALPES_FAULT=fault`; returns once `/readyz` says ready.
    pub async fn start(
        service: &'static str,
        database: &str,
        subscription: &str,
        fault: Option<&str>,
    ) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env(CHILD, format!("{service}:{database}:{subscription}"))
            .env_remove("ALPES_FAULT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(fault) = fault {
            command.env("ALPES_FAULT", fault);
        }
        let mut child = command.spawn().expect("starting the service process");
        let (tx, lines) = mpsc::unbounded_channel();
        let pid = child.id().unwrap_or_default();
        forward(child.stdout.take().unwrap(), service, pid, tx.clone());
        forward(child.stderr.take().unwrap(), service, pid, tx);
        let mut this = Self {
            url: String::new(),
            service,
            child,
            lines,
        };
        let listening = this.line_with("LISTENING ").await;
        this.url = format!("http://{}", listening.trim_start_matches("LISTENING "));
        this.wait_ready().await;
        this
    }

    /// Waits for an output line containing `text`; returns it.
    pub async fn line_with(&mut self, text: &str) -> String {
        let service = self.service;
        tokio::time::timeout(START_LIMIT, async {
            loop {
                match self.lines.recv().await {
                    Some(line) if line.contains(text) => return line,
                    Some(_) => {}
                    None => panic!("{service} exited before printing {text:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{service} printed no {text:?} within {START_LIMIT:?}"))
    }

    /// SIGKILL, then waits until the process is gone (reaped, so its pid no longer exists).
    pub async fn kill(mut self) {
        // `start_kill` sends SIGKILL on Unix.
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaping the killed service");
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            let ready = http.get(format!("{}/readyz", self.url)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited during start-up: {status}", self.service);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} at {} never became ready: is the stack up? (scripts/stack.sh up)",
                self.service,
                self.url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Copies `output`'s lines to this process's standard error (for a failing test's story) and
/// to `tx`.
fn forward(
    output: impl AsyncRead + Unpin + Send + 'static,
    service: &'static str,
    pid: u32,
    tx: mpsc::UnboundedSender<String>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(output).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{service} {pid}] {line}");
            let _ = tx.send(line);
        }
    });
}
