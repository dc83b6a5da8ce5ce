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

/// How long after a send an acknowledgment is waited for before the message is sent again (the
/// client's default request timeout).
const ACK_WAIT: Duration = Duration::from_secs(5);

/// Publishes commits to a stream's subject, each as one message, and returns each commit's
/// number: the stream sequence the stream gave it, global across every publisher. It is `Send`
/// and `Sync`, and its futures are `Send`; publishing takes `&mut self`, so a task owns it (make
/// one per task: each draws its own id).
///
/// Every message carries a `Nats-Msg-Id` of the publisher's id and its own count of commits,
/// so a publish whose acknowledgment was lost (a timeout, a server restart) is published again
/// under the same id, and the stream keeps it once and answers with the sequence it has. That
/// holds within the stream's deduplication window: the publisher gives up before it (its
/// patience, one minute by default) with [`Error::GaveUp`].
///
/// [`publish`](Publisher::publish) waits for each commit's acknowledgment;
/// [`send`](Publisher::send) keeps several commits in flight, each waited for by its
/// [`InFlight`]. A publisher's id must be unique among the stream's publishers:
/// [`Publisher::new`] draws one at random.
#[derive(Debug)]
pub struct Publisher {
    js: Context,
    /// Made once: each message's subject is a reference-counted clone of it.
    subject: async_nats::Subject,
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
        let subject = async_nats::Subject::from(subject.into());
        Self { js, subject, id: id.into(), sent: 0, patience: DEFAULT_PATIENCE }
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

    /// Publishes `parts` as one commit and returns its number, the stream sequence:
    /// [`send`](Self::send), then [`InFlight::acked`].
    ///
    /// # Errors
    ///
    /// [`Error::EmptyCommit`] for no parts; [`Error::Encode`] if a record does not serialize;
    /// [`Error::GaveUp`] if no acknowledgment came within the publisher's patience.
    pub async fn publish<P: AsRef<str>, R: Serialize>(&mut self, parts: &[(P, R)]) -> Result<u64, Error> {
        self.send(parts).await?.acked().await
    }

    /// Hands `parts` to the connection as one commit and returns at once, without waiting for
    /// the stream's acknowledgment: the [`InFlight`] waits for it (and publishes again if it is
    /// lost). Send several before waiting for the first to keep several commits in flight.
    ///
    /// Each commit has its own message id (this publisher's id and its count), kept by its
    /// `InFlight` for every retry, so the stream stores each once whatever is retried. Commits
    /// in flight together are numbered in the order the stream stores them: in the order sent,
    /// unless one is lost and published again after a later one was stored.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyCommit`] for no parts; [`Error::Encode`] if a record does not serialize.
    /// A failure to hand the message on is not an error here: [`InFlight::acked`] retries it.
    pub async fn send<P: AsRef<str>, R: Serialize>(&mut self, parts: &[(P, R)]) -> Result<InFlight, Error> {
        if parts.is_empty() {
            return Err(Error::EmptyCommit);
        }
        let payload = bytes::Bytes::from(encode(parts)?);
        self.sent += 1;
        let mut in_flight = InFlight {
            js: self.js.clone(),
            subject: self.subject.clone(),
            msg_id: format!("{}-{}", self.id, self.sent),
            payload,
            started: Instant::now(),
            sent_at: Instant::now(),
            patience: self.patience,
            ack: Err(String::new()),
        };
        in_flight.ack = in_flight.try_send().await;
        Ok(in_flight)
    }
}

/// A commit handed to the connection, waiting for the stream's acknowledgment
/// ([`Publisher::send`]). It is `Send` and `Sync`, so another task may await it. Dropping it
/// does not take the commit back: it may still be stored.
#[must_use = "a commit in flight is acknowledged (or found lost) only by `acked`"]
pub struct InFlight {
    js: Context,
    subject: async_nats::Subject,
    msg_id: String,
    payload: bytes::Bytes,
    started: Instant,
    /// When it was last handed to the connection.
    sent_at: Instant,
    patience: Duration,
    /// The acknowledgment to wait for, or why the message could not be handed on.
    ack: Result<async_nats::jetstream::context::PublishAckFuture, String>,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight").field("msg_id", &self.msg_id).finish_non_exhaustive()
    }
}

impl InFlight {
    /// The commit's message id.
    pub fn msg_id(&self) -> &str {
        &self.msg_id
    }

    /// Hands the message to the connection once more, under the same id.
    async fn try_send(&self) -> Result<async_nats::jetstream::context::PublishAckFuture, String> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", self.msg_id.as_str());
        self.js
            .publish_with_headers(self.subject.clone(), headers, self.payload.clone())
            .await
            .map_err(|error| error.to_string())
    }

    /// Waits for the acknowledgment and returns the commit's number, the stream sequence. A
    /// lost one (a timeout, a server restart) is published again under the same message id,
    /// backing off, until the publisher's patience (counted from [`Publisher::send`]) runs
    /// out; the stream keeps the commit once and answers a duplicate with the sequence it has.
    ///
    /// # Errors
    ///
    /// [`Error::GaveUp`] if no acknowledgment came within the publisher's patience.
    pub async fn acked(mut self) -> Result<u64, Error> {
        let mut pause = FIRST_PAUSE;
        loop {
            // The wait counts from the send, not from here: commits in flight are waited for
            // one after another, and a client's own timeout starts when its future is first
            // polled, so after a server restart each lost acknowledgment would cost a whole
            // timeout in turn. (A ready acknowledgment is taken even past the deadline: the
            // future is polled before the timer.)
            let deadline = tokio::time::Instant::from_std(self.sent_at + ACK_WAIT);
            let failure = match std::mem::replace(&mut self.ack, Err(String::new())) {
                Ok(ack) => match tokio::time::timeout_at(deadline, ack).await {
                    Ok(Ok(ack)) => return Ok(ack.sequence),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!("no acknowledgment within {ACK_WAIT:?} of the send"),
                },
                Err(failure) => failure,
            };
            if self.started.elapsed() + pause > self.patience {
                return Err(Error::GaveUp { msg_id: self.msg_id, last: failure });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
            self.sent_at = Instant::now();
            self.ack = self.try_send().await;
        }
    }
}
