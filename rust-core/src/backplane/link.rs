//! The backplane's task: one session with Redis at a time, two connections each (the
//! crate's async pub/sub for SUBSCRIBE, UNSUBSCRIBE and what arrives; a multiplexed
//! connection for PUBLISH), and between sessions a back-off that grows from 100 ms to
//! 5 s. A session starts by subscribing to everything the desired set names, so a
//! reconnect resubscribes with the same code that follows later changes. An outage is
//! told on stderr twice: once when the backplane is lost (or unreachable at start), with
//! the error, and once when it is back, with how long it was out.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::AsyncConnectionConfig;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{Backplane, Counters, Interest, Outgoing};
use crate::server_state::ServerState;

/// Longest wait for a connection to Redis (TCP and handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for Redis to answer a command; past it the session is lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle subscription connection is checked with a PING, so that a Redis
/// that went away without closing the connection is noticed.
const PING_INTERVAL: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Messages sent to Redis in one pipeline (one round trip).
const PUBLISH_BATCH: usize = 256;
/// Channels named in one SUBSCRIBE or UNSUBSCRIBE.
const CHANNELS_PER_COMMAND: usize = 512;

/// What ended a session or kept one from starting, as the log line says it.
type Failure = String;

/// Runs until the server's runtime shuts down: connects, serves a session until it
/// fails, backs off, connects again.
pub(super) async fn run(
    state: Arc<ServerState>,
    backplane: Arc<Backplane>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    let address = backplane.client.get_connection_info().addr().to_string();
    let counters = &backplane.counters;
    let mut backoff = FIRST_BACKOFF;
    // Since when the backplane is out, once a failure has been told.
    let mut outage: Option<Instant> = None;
    let mut ever_connected = false;
    loop {
        let failure = match Session::open(&backplane.client, &backplane.interest).await {
            Err(failure) => failure,
            Ok(session) => {
                counters.connected.store(true, Ordering::Relaxed);
                if let Some(since) = outage.take() {
                    let out = since.elapsed().as_secs_f64();
                    if ever_connected {
                        counters.reconnects.fetch_add(1, Ordering::Relaxed);
                        eprintln!("roost: backplane back (Redis at {address}) after {out:.1} s out");
                    } else {
                        eprintln!("roost: backplane connected (Redis at {address}) after {out:.1} s");
                    }
                }
                ever_connected = true;
                backoff = FIRST_BACKOFF;
                let failure = session.serve(&state, &backplane, &mut outgoing).await;
                counters.connected.store(false, Ordering::Relaxed);
                failure
            }
        };
        if outage.is_none() {
            outage = Some(Instant::now());
            let what = if ever_connected { "lost" } else { "unreachable" };
            eprintln!(
                "roost: backplane {what} (Redis at {address}): {failure}; \
                 messages stay on this server until it is back"
            );
        }
        discard_for(backoff, &mut outgoing, counters).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Waits `wait` before the next attempt to connect, dropping (and counting) what is
/// queued meanwhile: with no connection it cannot reach Redis, and holding it would
/// only deliver it late, to whichever servers had resubscribed by then.
async fn discard_for(wait: Duration, outgoing: &mut mpsc::Receiver<Outgoing>, counters: &Counters) {
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            () = &mut deadline => return,
            n = outgoing.recv_many(&mut batch, PUBLISH_BATCH) => {
                if n == 0 {
                    // The queue's sender lives as long as the server: not reached.
                    return deadline.await;
                }
                Counters::add(&counters.dropped, n);
                batch.clear();
            }
        }
    }
}

/// One session with Redis: the subscription connection, split into the half that
/// sends commands and the half that receives messages, the publishing connection, and
/// the channels Redis has confirmed.
struct Session {
    sink: PubSubSink,
    stream: PubSubStream,
    publisher: MultiplexedConnection,
    subscribed: HashSet<Vec<u8>>,
}

impl Session {
    /// Connects both connections and subscribes to every channel the desired set names.
    async fn open(client: &redis::Client, interest: &Interest) -> Result<Session, Failure> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let publisher = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|err| format!("connecting: {err}"))?;
        let pubsub = timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
            .await
            .map_err(|_| "connecting: timed out".to_string())?
            .map_err(|err| format!("connecting: {err}"))?;
        let (sink, stream) = pubsub.split();
        let mut session = Session { sink, stream, publisher, subscribed: HashSet::new() };
        reconcile(&mut session.sink, &mut session.subscribed, interest, true).await?;
        Ok(session)
    }

    /// Publishes the queue, follows the desired set and delivers what arrives, until
    /// either connection fails; returns the failure.
    async fn serve(
        self,
        state: &ServerState,
        backplane: &Backplane,
        outgoing: &mut mpsc::Receiver<Outgoing>,
    ) -> Failure {
        let Session { mut sink, mut stream, mut publisher, mut subscribed } = self;
        let listen = async {
            let mut ping =
                tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    message = stream.next() => match message {
                        Some(message) => backplane.receive(state, message.get_payload_bytes()),
                        None => return "the subscription connection closed".to_string(),
                    },
                    () = backplane.interest.changed() => {
                        if let Err(failure) = reconcile(&mut sink, &mut subscribed, &backplane.interest, false).await {
                            return failure;
                        }
                    }
                    _ = ping.tick() => {
                        if let Err(failure) = answered("a PING", sink.ping::<redis::Value>()).await {
                            return failure;
                        }
                    }
                }
            }
        };
        let publish = async {
            let mut batch = Vec::with_capacity(PUBLISH_BATCH);
            loop {
                if outgoing.recv_many(&mut batch, PUBLISH_BATCH).await == 0 {
                    // The queue's sender lives as long as the server: not reached.
                    return std::future::pending().await;
                }
                let mut pipeline = redis::pipe();
                for message in &batch {
                    pipeline.cmd("PUBLISH").arg(&message.channel[..]).arg(&message.envelope[..]).ignore();
                }
                let n = batch.len();
                batch.clear();
                match pipeline.query_async::<()>(&mut publisher).await {
                    Ok(()) => Counters::add(&backplane.counters.published, n),
                    Err(err) => {
                        // Redis may have taken some of them; none is sent twice.
                        Counters::add(&backplane.counters.dropped, n);
                        return format!("PUBLISH: {err}");
                    }
                }
            }
        };
        tokio::select! {
            failure = listen => failure,
            failure = publish => failure,
        }
    }
}

/// Sends the SUBSCRIBE and UNSUBSCRIBE commands that make `subscribed` (what Redis
/// confirmed on this connection) match the desired set: for every channel (`all`, on
/// a new connection) or for those changed since the last call.
async fn reconcile(
    sink: &mut PubSubSink,
    subscribed: &mut HashSet<Vec<u8>>,
    interest: &Interest,
    all: bool,
) -> Result<(), Failure> {
    let changes = interest.changes(subscribed, all);
    for chunk in changes.unsubscribe.chunks(CHANNELS_PER_COMMAND) {
        answered("UNSUBSCRIBE", sink.unsubscribe(chunk)).await?;
        for channel in chunk {
            subscribed.remove(channel);
        }
    }
    for chunk in changes.subscribe.chunks(CHANNELS_PER_COMMAND) {
        answered("SUBSCRIBE", sink.subscribe(chunk)).await?;
        subscribed.extend(chunk.iter().cloned());
    }
    Ok(())
}

/// The answer to a command on the subscription connection, within `RESPONSE_TIMEOUT`.
async fn answered<T>(
    what: &str,
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Failure> {
    match timeout(RESPONSE_TIMEOUT, command).await {
        Ok(result) => result.map_err(|err| format!("{what}: {err}")),
        Err(_) => Err(format!("Redis did not answer {what} within {} s", RESPONSE_TIMEOUT.as_secs())),
    }
}
