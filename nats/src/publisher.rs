//! Publishing commits: one commit is one message, deduplicated by its `Nats-Msg-Id`.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use async_nats::jetstream::Context;
use async_nats::HeaderMap;
use serde::Serialize;

use crate::codec::encode;
use crate::error::Error;

/// How long a publish is retried by default: well inside the stream's deduplication window
/// (two minutes unless the stream says otherwise), so every retry is deduplicated.
const DEFAULT_PATIENCE: Duration = Duration::from_secs(60);

/// The first pause between retries; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Publishes commits to a stream's subject, each as one message, and returns each commit's
/// number: the stream sequence the stream gave it, global across every publisher.
///
/// Every message carries a `Nats-Msg-Id` of the publisher's id and its own count of commits,
/// so a publish whose acknowledgment was lost (a timeout, a server restart) is published again
/// under the same id, and the stream keeps it once and answers with the sequence it has. That
/// holds within the stream's deduplication window: the publisher gives up before it (its
/// patience, one minute by default) with [`Error::GaveUp`].
///
/// One publisher publishes one commit at a time (`&mut self`); run one per task for more in
/// flight. Its id must be unique among the stream's publishers: [`Publisher::new`] draws one
/// at random.
#[derive(Debug)]
pub struct Publisher {
    js: Context,
    subject: String,
    id: String,
    sent: u64,
    patience: Duration,
}

impl Publisher {
    /// A publisher to `subject` (a subject of the stream) with a random id.
    pub fn new(js: Context, subject: impl Into<String>) -> Self {
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let id = format!("{:016x}{:08x}", random, std::process::id());
        Self::with_id(js, subject, id)
    }

    /// A publisher with the given id, unique among the stream's publishers.
    pub fn with_id(js: Context, subject: impl Into<String>, id: impl Into<String>) -> Self {
        Self { js, subject: subject.into(), id: id.into(), sent: 0, patience: DEFAULT_PATIENCE }
    }

    /// How long one publish is retried before [`Error::GaveUp`]; keep it inside the stream's
    /// deduplication window.
    pub fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// This publisher's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Publishes `parts` as one commit and returns its number, the stream sequence.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyCommit`] for no parts; [`Error::Encode`] if a record does not serialize;
    /// [`Error::GaveUp`] if no acknowledgment came within the publisher's patience.
    pub async fn publish<P: AsRef<str>, R: Serialize>(&mut self, parts: &[(P, R)]) -> Result<u64, Error> {
        if parts.is_empty() {
            return Err(Error::EmptyCommit);
        }
        let payload = bytes::Bytes::from(encode(parts)?);
        self.sent += 1;
        let msg_id = format!("{}-{}", self.id, self.sent);
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", msg_id.as_str());
            let failure =
                match self.js.publish_with_headers(self.subject.clone(), headers, payload.clone()).await {
                    Ok(ack) => match ack.await {
                        Ok(ack) => return Ok(ack.sequence),
                        Err(error) => error.to_string(),
                    },
                    Err(error) => error.to_string(),
                };
            if started.elapsed() + pause > self.patience {
                return Err(Error::GaveUp { msg_id, last: failure });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}
