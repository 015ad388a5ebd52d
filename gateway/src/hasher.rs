//! Password hashing off the shard threads: a small pool of threads computing argon2id with
//! bounded concurrency and a bounded queue, so a login flood cannot exhaust memory (each hash
//! holds `m_kib` of memory) or starve the event loops. A full queue answers "overloaded".

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::oneshot;

enum Job {
    Hash { password: String, reply: oneshot::Sender<Option<String>> },
    Verify { password: String, hash: String, reply: oneshot::Sender<bool> },
}

/// Why a hashing request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashError {
    /// The queue is full: retry later.
    Overloaded,
    /// The pool is gone or hashing failed.
    Failed,
}

/// The hashing pool.
#[derive(Debug, Clone)]
pub struct Hasher {
    jobs: Sender<JobBox>,
}

struct JobBox(Job);

impl std::fmt::Debug for JobBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hash job")
    }
}

impl Hasher {
    /// Starts `threads` hashing threads with a queue of `queue` waiting jobs.
    pub fn start(threads: usize, queue: usize, m_kib: u32, t: u32) -> std::io::Result<Self> {
        let params = Params::new(m_kib, t, 1, None).map_err(|e| std::io::Error::other(e.to_string()))?;
        let (tx, rx) = crossbeam_channel::bounded::<JobBox>(queue);
        for i in 0..threads {
            let rx = rx.clone();
            let params = params.clone();
            std::thread::Builder::new().name(format!("hasher-{i}")).spawn(move || {
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                for JobBox(job) in rx {
                    match job {
                        Job::Hash { password, reply } => {
                            let hash = argon.hash_password(password.as_bytes()).ok().map(|h| h.to_string());
                            let _ = reply.send(hash);
                        }
                        Job::Verify { password, hash, reply } => {
                            // Parameters come from the stored hash, so old hashes still verify.
                            let ok = argon.verify_password(password.as_bytes(), hash.as_str()).is_ok();
                            let _ = reply.send(ok);
                        }
                    }
                }
            })?;
        }
        Ok(Self { jobs: tx })
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        match self.jobs.try_send(JobBox(job)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(HashError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(HashError::Failed),
        }
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        rx.await.ok().flatten().ok_or(HashError::Failed)
    }

    /// Checks a password against a PHC string.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify { password, hash, reply })?;
        rx.await.map_err(|_| HashError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn hashes_and_verifies() {
        let h = Hasher::start(1, 4, 1024, 1).unwrap();
        let hash = h.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(h.verify("correct horse".into(), hash.clone()).await.unwrap());
        assert!(!h.verify("wrong".into(), hash).await.unwrap());
        assert!(!h.verify("x".into(), "not a hash".into()).await.unwrap());
    }
}
