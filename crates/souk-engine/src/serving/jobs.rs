//! Long work the shop does in the background or on request — trainings, embedding new
//! items — as jobs with a state, a progress and a message, so a front end (the admin
//! console, the CLI) can show them live and keep their recent history.
//!
//! The registry is memory only: it keeps the last [`JOB_HISTORY`] jobs and forgets them at
//! a restart (the generations a training saved stay on disk; only the record of the work
//! goes). A [`JobHandle`] is how the worker reports; a job whose handle is dropped without
//! finishing is marked failed, so a job never stays "running" after its worker is gone.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use super::page_log::now_ms;

/// Jobs kept, newest first; older finished ones are forgotten.
pub const JOB_HISTORY: usize = 100;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Every model, both rankers, a new generation.
    Train,
    /// Text vectors of new or changed catalog items.
    Embed,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Train => "train",
            JobKind::Embed => "embed",
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

/// A job as a reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub state: JobState,
    /// 0..=1.
    pub progress: f64,
    /// Unix ms when it was queued.
    pub queued_at: i64,
    /// Unix ms when it started running.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The current step while it runs; the outcome (or the error) when it ended.
    pub message: String,
}

/// The shop's jobs, newest first, bounded.
#[derive(Default)]
pub struct Jobs {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    jobs: VecDeque<Job>,
    next: u64,
}

impl Registry {
    fn get_mut(&mut self, id: &str) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    /// Forget the oldest finished jobs past the bound (active ones are never dropped).
    fn trim(&mut self) {
        while self.jobs.len() > JOB_HISTORY {
            match self.jobs.iter().rposition(|j| !j.state.is_active()) {
                Some(oldest_finished) => {
                    self.jobs.remove(oldest_finished);
                }
                None => break,
            }
        }
    }
}

impl Jobs {
    /// Queue a job of `kind`. With `exclusive`, refuse (`None`) while another job of the
    /// same kind is queued or running — the check and the insertion are one step.
    pub fn queue(&self, kind: JobKind, exclusive: bool, message: impl Into<String>) -> Option<JobHandle> {
        let mut registry = self.inner.lock();
        if exclusive && registry.jobs.iter().any(|j| j.kind == kind && j.state.is_active()) {
            return None;
        }
        registry.next += 1;
        let now = now_ms();
        // Unique across restarts too: the history does not survive one, ids should not
        // name a different job after it.
        let id = format!("{}-{now:x}-{}", kind.as_str(), registry.next);
        registry.jobs.push_front(Job {
            id: id.clone(),
            kind,
            state: JobState::Queued,
            progress: 0.0,
            queued_at: now,
            started_at: None,
            finished_at: None,
            message: message.into(),
        });
        registry.trim();
        Some(JobHandle { id, inner: self.inner.clone(), finished: false })
    }

    /// Every kept job, newest first.
    pub fn list(&self) -> Vec<Job> {
        self.inner.lock().jobs.iter().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.inner.lock().jobs.iter().find(|j| j.id == id).cloned()
    }
}

/// The worker's side of a job: progress while it runs, then done or failed.
pub struct JobHandle {
    id: String,
    inner: Arc<Mutex<Registry>>,
    finished: bool,
}

impl JobHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    fn update(&self, change: impl FnOnce(&mut Job)) {
        if let Some(job) = self.inner.lock().get_mut(&self.id) {
            change(job);
        }
    }

    /// The job starts running.
    pub fn start(&self, message: impl Into<String>) {
        let message = message.into();
        self.update(|job| {
            job.state = JobState::Running;
            job.started_at = Some(now_ms());
            job.message = message;
        });
    }

    /// Progress (clamped to 0..=1, never backwards) and the step now running.
    pub fn progress(&self, progress: f64, message: impl Into<String>) {
        let message = message.into();
        self.update(|job| {
            if progress.is_finite() {
                job.progress = job.progress.max(progress.clamp(0.0, 1.0));
            }
            job.message = message;
        });
    }

    /// The job succeeded.
    pub fn done(mut self, message: impl Into<String>) {
        let message = message.into();
        self.finished = true;
        self.update(|job| {
            job.state = JobState::Done;
            job.progress = 1.0;
            job.finished_at = Some(now_ms());
            job.started_at.get_or_insert(job.queued_at);
            job.message = message;
        });
    }

    /// The job failed; `message` says why.
    pub fn fail(mut self, message: impl Into<String>) {
        let message = message.into();
        self.finished = true;
        self.fail_in_place(message);
    }

    fn fail_in_place(&self, message: String) {
        self.update(|job| {
            job.state = JobState::Failed;
            job.finished_at = Some(now_ms());
            job.message = message;
        });
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        if !self.finished {
            self.fail_in_place("the job's worker stopped before it finished".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_runs_reports_progress_and_finishes() {
        let jobs = Jobs::default();
        let handle = jobs.queue(JobKind::Train, true, "waiting").unwrap();
        let id = handle.id().to_string();
        assert_eq!(jobs.get(&id).unwrap().state, JobState::Queued);
        assert!(jobs.queue(JobKind::Train, true, "second").is_none(), "one training at a time");
        assert!(jobs.queue(JobKind::Embed, true, "other kind").is_some());
        handle.start("models");
        handle.progress(0.5, "rankers");
        handle.progress(0.2, "late report");
        let job = jobs.get(&id).unwrap();
        assert_eq!((job.state, job.progress, job.message.as_str()), (JobState::Running, 0.5, "late report"));
        assert!(job.started_at.is_some() && job.finished_at.is_none());
        handle.done("generation g-1");
        let job = jobs.get(&id).unwrap();
        assert_eq!((job.state, job.progress), (JobState::Done, 1.0));
        assert!(job.finished_at >= job.started_at);
        assert!(jobs.queue(JobKind::Train, true, "again").is_some(), "the first one finished");
    }

    #[test]
    fn a_dropped_handle_fails_its_job_and_history_is_bounded() {
        let jobs = Jobs::default();
        let handle = jobs.queue(JobKind::Train, false, "").unwrap();
        let id = handle.id().to_string();
        handle.start("running");
        drop(handle);
        assert_eq!(jobs.get(&id).unwrap().state, JobState::Failed);

        let running = jobs.queue(JobKind::Embed, false, "kept while active").unwrap();
        for _ in 0..JOB_HISTORY + 10 {
            jobs.queue(JobKind::Train, false, "").unwrap().done("ok");
        }
        let list = jobs.list();
        assert_eq!(list.len(), JOB_HISTORY);
        assert!(list.iter().any(|j| j.id == running.id()), "an active job is never forgotten");
        assert!(jobs.get(&id).is_none(), "the oldest finished job went first");
        let ids: std::collections::HashSet<&str> = list.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids.len(), list.len(), "ids are unique");
    }
}
