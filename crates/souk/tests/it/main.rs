//! End-to-end tests of the `souk` binary: real processes, real sockets, temp data dirs.

mod bench;
mod browser;
mod cli;
mod crash;
mod rank;
mod replicas;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub fn souk() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_souk"));
    // No model fetch unless a test asks for one: tests must not depend on the network.
    command
        .env_remove("SOUK_DATA_DIR")
        .env_remove("SOUK_CONFIG")
        .env("SOUK__LOG__LEVEL", "warn")
        .env("SOUK_MODEL_FETCH", "off");
    command
}

pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

/// A `souk serve` child on a free port.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// [`Server::start`] with these environment variables set.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = souk();
        command.envs(env.iter().copied());
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("souk: listening on ")
            .unwrap_or_else(|| panic!("unexpected output {line:?}"))
            .to_string();
        Self { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
