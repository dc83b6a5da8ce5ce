//! An ingestion service: an HTTP endpoint on tokio (axum) that commits each request's records
//! with `commit_async`, answers once they are visible (`wait_sealed_async`), serves reads and
//! serves `/metrics` for Prometheus. No thread of the runtime ever blocks on the pipeline: a
//! full queue or a commit not yet visible suspends the request's task, and the shard worker
//! that makes room or progress wakes it.
//!
//! ```text
//! cargo run --example service -- 127.0.0.1:3000
//! curl --data-binary $'/hits 1\n/bytes 512' http://127.0.0.1:3000/commit   # → the commit number
//! curl http://127.0.0.1:3000/read/hits                                      # → 1
//! curl http://127.0.0.1:3000/metrics
//! ```
//!
//! A request's body is one commit: a line `<path> <integer>` per part, summed per path
//! (`merge::Sum`). Its test (`cargo test --example service`, also run by `cargo test
//! --workspace`) serves on a loopback port and calls it with a real HTTP client.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use lockstep::merge::Sum;
use lockstep::{Error, Pipeline, Producer};

/// How long a request waits for its commit to become visible before it answers 504 (the
/// commit is still made; the client may read it later).
const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

/// The pipeline, and producers for the requests to borrow.
struct Service {
    pipeline: Pipeline<Sum>,
    /// Producers not in use. A `Producer` serves one commit at a time (`&mut`), so each
    /// request borrows one and gives it back; a new one is made when all are busy, up to
    /// `Builder::max_producers`.
    idle: Mutex<Vec<Producer<Sum>>>,
}

/// A producer borrowed by one request; back to the idle list when dropped.
struct Lease<'a> {
    service: &'a Service,
    producer: Option<Producer<Sum>>,
}

impl Service {
    fn new(pipeline: Pipeline<Sum>) -> Self {
        Self { pipeline, idle: Mutex::new(Vec::new()) }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Producer<Sum>>> {
        // Only pushes and pops happen under it: a panic cannot leave the list torn.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lease(&self) -> Result<Lease<'_>, Error> {
        let idle = self.idle().pop();
        let producer = match idle {
            Some(producer) => producer,
            None => self.pipeline.producer()?,
        };
        Ok(Lease { service: self, producer: Some(producer) })
    }
}

impl Lease<'_> {
    /// The borrowed producer (present from `lease` until the drop).
    fn producer(&mut self) -> Result<&mut Producer<Sum>, Error> {
        self.producer.as_mut().ok_or(Error::Shutdown)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(producer) = self.producer.take() {
            self.service.idle().push(producer);
        }
    }
}

/// The routes, over a service a caller has built (so a test serves the same thing `main` does).
fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/commit", post(commit))
        .route("/read/{*path}", get(read))
        .route("/metrics", get(metrics))
        .with_state(service)
}

/// `POST /commit`: the body's parts as one commit; answers its number once it is visible.
async fn commit(State(service): State<Arc<Service>>, body: String) -> Response {
    let parts = match parse(&body) {
        Ok(parts) => parts,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let committed = async {
        let mut lease = service.lease()?;
        // Awaits room if this producer's queues are full; a client that disconnects drops
        // this future, and a dropped commit takes no number and enqueues nothing.
        lease.producer()?.commit_async(parts).await
    };
    let commit = match committed.await {
        Ok(commit) => commit,
        Err(error) => return refused(&error),
    };
    match tokio::time::timeout(VISIBLE_WITHIN, service.pipeline.wait_sealed_async(commit)).await {
        Ok(Ok(_)) => format!("{commit}\n").into_response(),
        Ok(Err(error)) => refused(&error),
        Err(_) => (StatusCode::GATEWAY_TIMEOUT, format!("commit {commit} not visible yet\n")).into_response(),
    }
}

/// One part per non-empty line: `<path> <integer>`.
fn parse(body: &str) -> Result<Vec<(String, i64)>, String> {
    let lines = body.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    lines
        .map(|(n, line)| {
            let bad = || format!("line {}: expected `<path> <integer>`, found {line:?}\n", n + 1);
            let (path, value) = line.trim().rsplit_once(' ').ok_or_else(bad)?;
            let value = value.parse().map_err(|_| bad())?;
            Ok((path.trim_end().to_owned(), value))
        })
        .collect()
}

/// An error as a response: the client's fault, the service's load, or the service's failure.
fn refused(error: &Error) -> Response {
    let status = match error {
        Error::EmptyPath
        | Error::PathTooLong { .. }
        | Error::RecordTooLarge { .. }
        | Error::EmptyCommit
        | Error::CommitTooLarge { .. } => StatusCode::BAD_REQUEST,
        Error::TooManyProducers { .. } | Error::Shutdown => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("{error}\n")).into_response()
}

/// `GET /read/{path}`: the path's sum up to the latest snapshot, or 404 if it has none.
async fn read(State(service): State<Arc<Service>>, Path(path): Path<String>) -> Response {
    match service.pipeline.snapshot().read(&*format!("/{path}")) {
        Some(sum) => format!("{sum}\n").into_response(),
        None => (StatusCode::NOT_FOUND, format!("no records for /{path}\n")).into_response(),
    }
}

/// `GET /metrics`: the pipeline's figures in the Prometheus text format.
async fn metrics(State(service): State<Arc<Service>>) -> Response {
    let mut text = Vec::new();
    match service.pipeline.stats().write_prometheus(&mut text, &[("service", "example")]) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args().nth(1).as_deref().unwrap_or("127.0.0.1:3000").parse()?;
    let service = Arc::new(Service::new(Pipeline::builder(Sum).build()?));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("serving on http://{}", listener.local_addr()?);
    axum::serve(listener, router(service.clone())).with_graceful_shutdown(ctrl_c()).await?;
    // Every connection is closed: the last handles are ours.
    let service = Arc::into_inner(service).ok_or("a request still holds the service")?;
    drop(service.idle.into_inner().unwrap_or_else(PoisonError::into_inner));
    let last = service.pipeline.shutdown()?;
    println!("shut down at commit {}", last.frontier());
    Ok(())
}

async fn ctrl_c() {
    // Without a signal handler, serve until killed.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use std::future::IntoFuture;

    use super::*;

    /// Serves on a loopback port and calls it with a real HTTP client (ureq) from four threads
    /// at once, through queues small enough that commits wait for room: every commit is
    /// answered with its own number once visible, reads give the sums, bad bodies get 400 and
    /// unknown paths 404, and `/metrics` counts every commit.
    #[test]
    fn serves_commits_reads_and_metrics() -> Result<(), Box<dyn std::error::Error>> {
        const CLIENTS: usize = 4;
        const REQUESTS: usize = 25;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        // Room for one commit of three parts whatever the routing (its random key may send all
        // three to one shard), and no more.
        let pipeline = Pipeline::builder(Sum).shards(2).queue_capacity(3).build()?;
        let service = Arc::new(Service::new(pipeline));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(
            axum::serve(listener, router(service.clone()))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .into_future(),
        );

        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (agent, base) = (agent.clone(), base.clone());
                std::thread::spawn(move || -> Result<Vec<u64>, ureq::Error> {
                    let mut numbers = Vec::new();
                    for i in 0..REQUESTS {
                        let body = format!("/hits 1\n/client/{client} {i}\n/bytes 10\n");
                        let mut response = agent.post(&format!("{base}/commit")).send(body)?;
                        assert_eq!(response.status(), 200);
                        let number = response.body_mut().read_to_string()?;
                        numbers.push(number.trim().parse().expect("a commit number"));
                    }
                    Ok(numbers)
                })
            })
            .collect();
        let mut numbers = Vec::new();
        for client in clients {
            numbers.extend(client.join().expect("a client thread")?);
        }
        numbers.sort_unstable();
        let total = (CLIENTS * REQUESTS) as u64;
        assert_eq!(numbers, (1..=total).collect::<Vec<u64>>(), "each commit answered once");

        let get = |path: &str| -> Result<(u16, String), ureq::Error> {
            let mut response = agent.get(&format!("{base}{path}")).call()?;
            Ok((response.status().as_u16(), response.body_mut().read_to_string()?))
        };
        assert_eq!(get("/read/hits")?, (200, format!("{total}\n")));
        assert_eq!(get("/read/bytes")?, (200, format!("{}\n", total * 10)));
        let per_client = (0..REQUESTS).sum::<usize>();
        assert_eq!(get("/read/client/3")?, (200, format!("{per_client}\n")));
        assert_eq!(get("/read/nowhere")?.0, 404);
        let mut bad = agent.post(&format!("{base}/commit")).send("/hits one\n")?;
        assert_eq!(bad.status(), 400);
        assert!(bad.body_mut().read_to_string()?.contains("line 1"));
        assert_eq!(agent.post(&format!("{base}/commit")).send("")?.status(), 400, "an empty commit");

        let (status, text) = get("/metrics")?;
        assert_eq!(status, 200);
        assert!(text.contains(&format!("lockstep_commits_total{{service=\"example\"}} {total}\n")), "{text}");

        let _ = stop.send(());
        runtime.block_on(server)??;
        let service = Arc::into_inner(service).ok_or("the server still holds the service")?;
        drop(service.idle.into_inner().unwrap_or_else(PoisonError::into_inner));
        assert_eq!(service.pipeline.shutdown()?.frontier(), total);
        Ok(())
    }
}
