//! Coalescing concurrent queries into one forward pass.
//!
//! Embedding one short query is bound by memory, not arithmetic: every query streams all the
//! encoder's dense weights (42 MB for all-MiniLM-L6-v2, more than a typical last-level cache)
//! from memory to multiply a handful of tokens by them. Under concurrent searches that stream is
//! shared: [`QueryBatcher`] queues the queries that arrive while a pass is running and embeds
//! them together in the next pass, so a batch of eight costs little more than one.
//!
//! There is no background thread and no timer: the first caller to find the queue waiting and a
//! pass free runs the pass for everyone queued (up to `max_batch`), then hands each caller its
//! vector. An idle server therefore embeds a lone query at once, with no added wait; batches
//! form only when queries overlap. At most `max_passes` passes run at the same time (each on
//! its caller's thread), which bounds the memory traffic the embedder competes for.
//!
//! Passes run on a small rayon pool of the batcher's own (`max_passes` threads), so the
//! element-wise work inside the model runs inline on that thread instead of waking the
//! process's global pool for every tiny tensor: on a busy server that waking and spinning
//! costs more than the work.
//!
//! Passages (catalog batches) and multi-text calls go straight to the model: they are already
//! batches.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::{EmbedError, Embedder, TextKind};

/// An [`Embedder`] that batches concurrent single-query calls; see the module docs.
pub struct QueryBatcher<E> {
    model: E,
    max_batch: usize,
    max_passes: usize,
    pool: rayon::ThreadPool,
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    next_ticket: u64,
    waiting: Vec<(u64, String)>,
    /// Finished tickets: the vector, or the pass's error message.
    finished: HashMap<u64, Result<Vec<f32>, String>>,
    passes: usize,
}

impl<E: Embedder> QueryBatcher<E> {
    /// `max_batch` queries per pass at most; `max_passes` passes at once at most (both ≥ 1).
    pub fn new(model: E, max_batch: usize, max_passes: usize) -> Result<QueryBatcher<E>, EmbedError> {
        let max_passes = max_passes.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(max_passes)
            .thread_name(|index| format!("souk-query-embed-{index}"))
            .build()
            .map_err(|error| EmbedError::BadInput { message: format!("cannot start the query threads: {error}") })?;
        Ok(QueryBatcher {
            model,
            max_batch: max_batch.max(1),
            max_passes,
            pool,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        })
    }

    pub fn model(&self) -> &E {
        &self.model
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside a pass happens outside the lock, so the state is never half-written.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push((ticket, text.to_string()));
        loop {
            if let Some(result) = state.finished.remove(&ticket) {
                return result.map_err(|message| EmbedError::BadInput { message });
            }
            if state.passes < self.max_passes && !state.waiting.is_empty() {
                let take = state.waiting.len().min(self.max_batch);
                let batch: Vec<(u64, String)> = state.waiting.drain(..take).collect();
                state.passes += 1;
                drop(state);
                let texts: Vec<&str> = batch.iter().map(|(_, text)| text.as_str()).collect();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.pool.install(|| self.model.embed(&texts, TextKind::Query))
                }));
                state = self.lock();
                state.passes -= 1;
                match outcome {
                    Ok(Ok(vectors)) if vectors.len() == batch.len() => {
                        for ((ticket, _), vector) in batch.into_iter().zip(vectors) {
                            state.finished.insert(ticket, Ok(vector));
                        }
                    }
                    Ok(Ok(vectors)) => {
                        let message = format!("{} vectors for {} queries", vectors.len(), batch.len());
                        for (ticket, _) in batch {
                            state.finished.insert(ticket, Err(message.clone()));
                        }
                    }
                    Ok(Err(error)) => {
                        let message = error.to_string();
                        for (ticket, _) in batch {
                            state.finished.insert(ticket, Err(message.clone()));
                        }
                    }
                    Err(panic) => {
                        for (ticket, _) in batch {
                            state.finished.insert(ticket, Err("the embedder panicked".to_string()));
                        }
                        drop(state);
                        self.done.notify_all();
                        std::panic::resume_unwind(panic);
                    }
                }
                self.done.notify_all();
                continue;
            }
            state = self.done.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

impl<E: Embedder> Embedder for QueryBatcher<E> {
    fn id(&self) -> &str {
        self.model.id()
    }

    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
        match (texts, kind) {
            ([text], TextKind::Query) => Ok(vec![self.embed_query(text)?]),
            _ => self.model.embed(texts, kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A model whose vector of a text is its length, and that records the size of each pass.
    struct Recording {
        passes: Mutex<Vec<usize>>,
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    impl Embedder for Recording {
        fn id(&self) -> &str {
            "recording"
        }

        fn dim(&self) -> usize {
            1
        }

        fn embed(&self, texts: &[&str], _kind: TextKind) -> Result<Vec<Vec<f32>>, EmbedError> {
            let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(running, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            self.passes.lock().unwrap().push(texts.len());
            self.running.fetch_sub(1, Ordering::SeqCst);
            if texts.contains(&"fail") {
                return Err(EmbedError::BadInput { message: "no".to_string() });
            }
            Ok(texts.iter().map(|text| vec![text.len() as f32]).collect())
        }
    }

    fn recording() -> Recording {
        Recording { passes: Mutex::new(Vec::new()), running: AtomicUsize::new(0), most_running: AtomicUsize::new(0) }
    }

    #[test]
    fn concurrent_queries_share_passes_and_each_gets_its_own_vector() {
        let batcher = Arc::new(QueryBatcher::new(recording(), 8, 1).unwrap());
        let handles: Vec<_> = (0..24)
            .map(|index| {
                let batcher = batcher.clone();
                std::thread::spawn(move || {
                    let text = "x".repeat(index + 1);
                    let vector = batcher.embed(&[&text], TextKind::Query).unwrap();
                    assert_eq!(vector, vec![vec![(index + 1) as f32]]);
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let passes = batcher.model().passes.lock().unwrap().clone();
        assert_eq!(passes.iter().sum::<usize>(), 24);
        assert!(passes.iter().all(|&size| size <= 8), "{passes:?}");
        assert!(passes.len() < 24, "no pass was shared: {passes:?}");
        assert_eq!(batcher.model().most_running.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_lone_query_runs_at_once_and_passages_bypass_the_queue() {
        let batcher = QueryBatcher::new(recording(), 8, 2).unwrap();
        assert_eq!(batcher.embed(&["abc"], TextKind::Query).unwrap(), vec![vec![3.0]]);
        assert_eq!(batcher.embed(&["a", "bb"], TextKind::Passage).unwrap(), vec![vec![1.0], vec![2.0]]);
        assert_eq!(*batcher.model().passes.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn a_failed_pass_fails_only_its_own_callers() {
        let batcher = QueryBatcher::new(recording(), 8, 1).unwrap();
        assert!(batcher.embed(&["fail"], TextKind::Query).is_err());
        assert_eq!(batcher.embed(&["ok"], TextKind::Query).unwrap(), vec![vec![2.0]]);
    }
}
