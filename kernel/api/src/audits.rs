//! Audit entries of unmasked reads, committed together while their requests
//! wait without holding a thread.
//!
//! Each unmasked read answers once its entry is on disk. One commit (one
//! fsync) per read made audited reads queue for the disk; the store's group
//! commit that replaced it parked each caller's thread on a condition variable
//! until its entry was written: under load, a blocking thread per in-flight
//! read and a futex wake-up for each, a fifth of an audited profile read's time
//! (6 % now). Here a request queues its entry and awaits a oneshot; one task
//! writes whatever has queued in one transaction (`AuditService::record_audits`),
//! answers those requests, and goes on while more have queued meanwhile.

use std::sync::Mutex;

use kith_core::audit::NewAudit;
use kith_core::prelude::*;
use tokio::sync::oneshot;

use crate::AppState;
use crate::error::ApiError;

/// What a commit answers its waiters: the failure's text and, for a full or failing disk, its kind.
type Answer = oneshot::Sender<Result<(), (String, Option<kith_core::Unavailable>)>>;

#[derive(Default)]
pub(crate) struct AuditQueue {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<(NewAudit, Answer)>,
    /// A task is writing; it takes what is pending before it ends.
    committing: bool,
}

impl AppState {
    /// Record `entry` and return once it is on disk (or the commit failed).
    pub(crate) async fn audit(&self, entry: NewAudit) -> Result<(), ApiError> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.0.audits.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.pending.push((entry, answer));
            !std::mem::replace(&mut queue.committing, true)
        };
        if start {
            tokio::spawn(self.clone().commit_audits());
        }
        match answered.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((error, unavailable))) => {
                let error = anyhow::anyhow!("recording the audit entry failed: {error}");
                // A full disk is the machine's (503), as for every other write.
                Err(match unavailable {
                    Some(kind) => ApiError::storage_unavailable(kind, error),
                    None => ApiError::internal(error),
                })
            }
            Err(_) => Err(ApiError::internal(anyhow::anyhow!("the audit commit ended without an answer"))),
        }
    }

    async fn commit_audits(self) {
        loop {
            let batch = {
                let mut queue = self.0.audits.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.pending.is_empty() {
                    queue.committing = false;
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            let (entries, answers): (Vec<NewAudit>, Vec<Answer>) = batch.into_iter().unzip();
            let store = self.store();
            let start = std::time::Instant::now();
            // A panic in the commit comes back as a JoinError: those requests fail, the queue goes on.
            let outcome = match tokio::task::spawn_blocking(move || store.record_audits(&entries)).await {
                Ok(written) => written.map_err(|e| (e.to_string(), e.unavailable())),
                Err(e) => Err((e.to_string(), None)),
            };
            self.metrics().record_db("audit", start.elapsed());
            for answer in answers {
                let _ = answer.send(outcome.clone());
            }
        }
    }
}
