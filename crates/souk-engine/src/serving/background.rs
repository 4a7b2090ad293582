//! Work that runs beside serving (a training inside `souk serve`) at a lower CPU priority.
//!
//! On 2 cores a training's threads and the request threads contend for the same CPUs; at
//! equal priority a retraining at a million items had raised the recommendation p99 by
//! 42%. The work runs on a thread of its own and a rayon pool of its own (training's
//! parallel loops run on the pool they are called from), each thread at nice
//! [`BACKGROUND_NICE`]: the kernel's scheduler then gives a busy request thread about
//! seventy times the CPU share of a training thread, while an idle server leaves the
//! training the whole machine. Linux only (there a nice value is per thread); elsewhere the work runs at
//! normal priority. Fresh threads, because a thread's nice value cannot be lowered back
//! without privileges — a pooled thread (tokio's blocking pool) must never be reniced.

use crate::error::{Error, Result};

/// The nice value of background threads: the lowest priority, weight 15 against a request
/// thread's 1024 in the kernel's fair scheduler. At 1M items and half the server's
/// throughput, nice 19 gave a retraining's p99 31.5 ms against 12.8 without (training 319 s),
/// nice 10 38.3 against 10.6 (279 s).
pub const BACKGROUND_NICE: i32 = 19;

/// Run `work` at background priority on threads of its own, waiting for it.
pub fn beside_serving<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> Result<T> {
    let threads = rayon::current_num_threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name({
            let name = name.to_string();
            move |i| format!("{name}-{i}")
        })
        .start_handler(|_| lower_this_thread())
        .build()
        .map_err(|e| Error::Internal(format!("starting the {name} threads: {e}")))?;
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn_scoped(scope, || {
                lower_this_thread();
                pool.install(work)
            })
            .map_err(|e| Error::Internal(format!("starting the {name} thread: {e}")))?
            .join()
            .map_err(|_| Error::Internal(format!("the {name} thread panicked")))
    })
}

/// Lower the calling thread's priority to [`BACKGROUND_NICE`].
fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        // Never raise a priority a thread already runs below.
        if this_thread_nice().is_some_and(|nice| nice >= BACKGROUND_NICE) {
            return;
        }
        if let Err(e) = rustix::process::setpriority_process(Some(thread), BACKGROUND_NICE) {
            tracing::warn!(error = %e, "a background thread could not lower its priority");
        }
    }
}

/// The calling thread's nice value (Linux), for tests and diagnostics.
#[cfg(target_os = "linux")]
pub fn this_thread_nice() -> Option<i32> {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn work_and_its_parallel_loops_run_lowered_and_the_caller_is_untouched() {
        use rayon::prelude::*;
        let before = this_thread_nice().unwrap();
        let (outer, inner) = beside_serving("souk-test", || {
            let outer = this_thread_nice().unwrap();
            let inner: Vec<i32> = (0..64).into_par_iter().map(|_| this_thread_nice().unwrap()).collect();
            (outer, inner)
        })
        .unwrap();
        assert_eq!(outer, BACKGROUND_NICE.max(before));
        assert!(inner.iter().all(|&n| n == BACKGROUND_NICE.max(before)), "{inner:?}");
        assert_eq!(this_thread_nice().unwrap(), before, "the calling thread keeps its priority");
    }
}
