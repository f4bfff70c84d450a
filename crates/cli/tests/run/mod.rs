//! Runs the `alpes` binary the way a user does, with none of the caller's ALPES_* variables.

#![allow(dead_code)]

use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const VARIABLES: [&str; 10] = [
    "ALPES_API_TOKEN",
    "ALPES_MARKETING_URL",
    "ALPES_TRACKING_URL",
    "ALPES_ATTRIBUTION_URL",
    "ALPES_COMMISSION_URL",
    "ALPES_PULSAR_URL",
    "ALPES_PULSAR_ADMIN_URL",
    "ALPES_PULSAR_NAMESPACE",
    "ALPES_PULSAR_TOKEN",
    "RUST_LOG",
];

/// What a run printed and how it ended.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `alpes <args>`, fed `stdin`, with `env` set.
pub async fn alpes(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alpes"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in VARIABLES {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the alpes binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().await.unwrap();
    Ran {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}
