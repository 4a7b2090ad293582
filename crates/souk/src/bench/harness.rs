//! The measuring harness of `souk bench`: scratch directories, `souk` child processes (a
//! measured phase or a server, each with its own peak memory), concurrent HTTP load,
//! percentiles and latency summaries.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// Where a scenario keeps its files: a directory given with `--work-dir` (kept afterwards)
/// or a temporary one (removed afterwards).
pub enum Scratch {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl Scratch {
    pub fn new(work_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Ok(match work_dir {
            Some(dir) => Scratch::Kept(dir),
            None => Scratch::Temp(tempfile::Builder::new().prefix("souk-bench-").tempdir()?),
        })
    }

    pub fn path(&self) -> &Path {
        match self {
            Scratch::Kept(dir) => dir,
            Scratch::Temp(dir) => dir.path(),
        }
    }
}

/// The machine a report was measured on.
pub fn machine() -> Value {
    json!({"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)})
}

/// Peak resident memory of a process, from /proc (Linux), in bytes.
pub fn peak_rss_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Mean and percentiles (ms) of request latencies; sorts them.
pub fn latency_summary(latencies: &mut [f64]) -> Value {
    latencies.sort_by(f64::total_cmp);
    let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    json!({"mean": mean, "p50": percentile(latencies, 0.50), "p90": percentile(latencies, 0.90),
        "p99": percentile(latencies, 0.99), "max": latencies.last().copied().unwrap_or(0.0)})
}

/// GET `url(k)` for k = 0, 1, … during two seconds before measuring (answers unread).
pub fn warm_up(agent: &ureq::Agent, url: &dyn Fn(usize) -> String) {
    let until = Instant::now() + Duration::from_secs(2);
    let mut k = 0usize;
    while Instant::now() < until {
        let _ = agent.get(&url(k)).call();
        k += 1;
    }
}

/// What a load run measured.
pub struct Load {
    /// Milliseconds per answered request, client by client.
    pub latencies: Vec<f64>,
    /// Requests that failed.
    pub errors: u64,
    /// Seconds from the first request to the last answer.
    pub seconds: f64,
}

/// What one client thread recorded.
#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    errors: u64,
}

impl Tally {
    /// GET `url` and read the answer; its latency counts from `since`.
    fn get(&mut self, agent: &ureq::Agent, url: &str, since: Instant) {
        match agent.get(url).call() {
            Ok(response) => {
                let _ = response.into_string();
                self.latencies.push(since.elapsed().as_secs_f64() * 1e3);
            }
            Err(_) => self.errors += 1,
        }
    }
}

/// Run `client(c, agent, tally)` on `clients` threads, each with its own connection, and
/// gather what they recorded.
fn run_clients(clients: usize, client: impl Fn(usize, &ureq::Agent, &mut Tally) + Sync) -> Load {
    let started = Instant::now();
    let client = &client;
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let agent = ureq::AgentBuilder::new().build();
                    let mut tally = Tally::default();
                    client(c, &agent, &mut tally);
                    tally
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    Load {
        latencies: tallies.iter().flat_map(|t| t.latencies.iter().copied()).collect(),
        errors: tallies.iter().map(|t| t.errors).sum(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// `clients` threads, each with its own connection, send GET requests one after another for
/// `seconds`: client `c`'s `k`-th request goes to `url(c, k)`.
pub fn load(clients: usize, seconds: f64, url: &(dyn Fn(usize, usize) -> String + Sync)) -> Load {
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    run_clients(clients, |c, agent, tally| {
        let mut k = 0usize;
        while Instant::now() < stop {
            let url = url(c, k);
            tally.get(agent, &url, Instant::now());
            k += 1;
        }
    })
}

/// An open-loop load: `rate` requests per second in all, spread evenly over `clients`
/// threads for `seconds` (client `c`'s `k`-th request goes to `url(c, k)` at its scheduled
/// time). A latency runs from the scheduled time, not the send: a client held up by a slow
/// answer sends late, and the wait counts (no coordinated omission). What a server does
/// beside serving is measured this way, at a load it can carry — a closed loop that
/// saturates the CPUs measures throughput instead, which background work must lower.
pub fn paced_load(clients: usize, seconds: f64, rate: f64, url: &(dyn Fn(usize, usize) -> String + Sync)) -> Load {
    let clients = clients.max(1);
    let rate = rate.max(1e-3);
    let started = Instant::now();
    let stop = started + Duration::from_secs_f64(seconds);
    // Client c sends at offsets (k · clients + c) / rate.
    let interval = clients as f64 / rate;
    run_clients(clients, |c, agent, tally| {
        let mut k = 0usize;
        loop {
            let due = started + Duration::from_secs_f64(k as f64 * interval + c as f64 / rate);
            if due >= stop {
                break;
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            tally.get(agent, &url(c, k), due);
            k += 1;
        }
    })
}

/// Run `souk ARGS` on a data directory, its output discarded.
pub fn run_child(exe: &Path, data_dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Process::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("SOUK__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running souk {}", args.join(" ")))?;
    if !status.success() {
        bail!("souk {} failed with {status}", args.join(" "));
    }
    Ok(())
}

/// What a measured child took: its wall-clock seconds, its peak resident memory as the
/// kernel accounted it (`wait4`), and its standard output.
pub struct Measured {
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    pub stdout: Vec<u8>,
}

impl Measured {
    /// The output parsed as JSON (the child was run with `--json`).
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.stdout).context("reading a measured child's JSON output")
    }
}

/// Run `souk ARGS` on a data directory, timed, with its own peak memory.
pub fn run_measured(exe: &Path, data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut child = Process::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("SOUK__LOG__LEVEL", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running souk {}", args.join(" ")))?;
    let mut stdout = Vec::new();
    child.stdout.take().context("reading a child's output")?.read_to_end(&mut stdout)?;
    let (status, peak_rss_bytes) = wait_with_peak(child.id())?;
    if status != 0 {
        bail!("souk {} failed (wait status {status})", args.join(" "));
    }
    Ok(Measured { seconds: started.elapsed().as_secs_f64(), peak_rss_bytes, stdout })
}

/// Reap the child `pid` (not yet waited for): its raw wait status (0: exited with 0) and its
/// peak resident memory in bytes.
#[allow(unsafe_code)]
fn wait_with_peak(pid: u32) -> anyhow::Result<(i32, u64)> {
    let pid = libc::pid_t::try_from(pid).context("a child's process id")?;
    let mut status = 0;
    // SAFETY: `rusage` is plain data, valid when zeroed.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types; `pid` is a child of
        // this process that nothing else waits for.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("waiting for a measured child");
        }
    }
    // Linux reports the peak in KiB.
    Ok((status, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024))
}

/// Run `souk ARGS --json` on a data directory and parse its output.
pub fn run_child_json(exe: &Path, data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Value> {
    run_measured(exe, data_dir, args, env)?.json().with_context(|| format!("souk {}", args.join(" ")))
}

/// A `souk serve` child process on a free port.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(exe: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with_env(exe, data_dir, &[])
    }

    pub fn start_with_env(exe: &Path, data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut child = Process::new(exe)
            .envs(env.iter().copied())
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("SOUK__LOG__LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting souk serve")?;
        let stdout = child.stdout.take().context("reading the server's output")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(base) = line.trim().strip_prefix("souk: listening on ") else {
            let _ = child.kill();
            bail!("the server did not start: {line:?}");
        };
        Ok(Self { base: base.to_string(), child })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's peak resident memory so far.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        peak_rss_bytes(&self.child.id().to_string())
    }

    pub fn stop(&mut self) {
        // SIGTERM for a graceful stop; fall back to kill.
        let terminated =
            Process::new("kill").args(["-TERM", &self.child.id().to_string()]).status().is_ok_and(|s| s.success());
        if !terminated {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::io::stderr().flush();
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    /// A tiny HTTP/1.1 server answering `ok` to every request on every connection, counting
    /// the requests; it runs until the test process ends.
    fn counting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    let mut line = String::new();
                    loop {
                        // One request: its lines up to the blank one.
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if writer.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (base, served)
    }

    #[test]
    fn a_paced_load_sends_exactly_its_schedule_whatever_the_machine_speed() {
        let (base, served) = counting_server();
        let url = |c: usize, k: usize| format!("{base}/c{c}/k{k}");
        // 40 per second over 2 clients for half a second: due at 0, 25, …, 475 ms.
        let paced = paced_load(2, 0.5, 40.0, &url);
        assert_eq!((paced.latencies.len(), paced.errors), (20, 0));
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 20);
        assert!(paced.latencies.iter().all(|ms| *ms >= 0.0));
        // The closed loop sends as fast as answers come, and counts what it sent.
        let closed = load(3, 0.2, &url);
        assert_eq!(closed.errors, 0);
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 20 + closed.latencies.len());
    }
}
