//! The bus over NATS JetStream: a stream of call events, one durable pull consumer writing
//! rollups.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::PullConsumer};
use futures_util::StreamExt;
use sb_core::monitor::CallEvent;
use sb_store::Db;
use tokio::sync::{mpsc, watch};

use super::{MonitorError, Msg, rollup};
use crate::config::MonitorConfig;

/// The durable consumer's name: every instance shares it, so each event is applied once.
const CONSUMER: &str = "rollups";

#[derive(Clone)]
pub(super) struct Bus {
    js: jetstream::Context,
    stream: String,
    subject: String,
}

impl Bus {
    pub(super) async fn connect(c: &MonitorConfig) -> Result<Self, MonitorError> {
        let fail = |reason: String| MonitorError::Nats { url: c.nats_url.clone(), reason };
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(&c.nats_url)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let js = jetstream::new(client);
        js.get_or_create_stream(jetstream::stream::Config {
            name: c.nats_stream.clone(),
            subjects: vec![c.nats_subject.clone()],
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..Default::default()
        })
        .await
        .map_err(|e| fail(format!("stream {}: {e}", c.nats_stream)))?;
        Ok(Self { js, stream: c.nats_stream.clone(), subject: c.nats_subject.clone() })
    }

    async fn consumer(&self) -> Result<PullConsumer, String> {
        let stream = self.js.get_stream(&self.stream).await.map_err(|e| e.to_string())?;
        stream
            .get_or_create_consumer(
                CONSUMER,
                jetstream::consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: AckPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
    }
}

/// Publishes recorded events; acknowledgements are awaited in groups, and all of them on a
/// flush.
pub(super) async fn publish(
    bus: Bus,
    mut rx: mpsc::Receiver<Msg>,
    flush: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pending = Vec::new();
    let mut tick = tokio::time::interval(flush);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Event(e)) => {
                    let Ok(payload) = serde_json::to_vec(&e) else { continue };
                    match bus.js.publish(bus.subject.clone(), payload.into()).await {
                        Ok(ack) => pending.push(ack),
                        Err(err) => tracing::warn!(error = %err, "could not publish a monitoring event"),
                    }
                    if pending.len() >= 256 {
                        settle(&mut pending).await;
                    }
                }
                Some(Msg::Flush(done)) => {
                    settle(&mut pending).await;
                    let _ = done.send(());
                }
                None => break,
            },
            _ = tick.tick() => settle(&mut pending).await,
            _ = shutdown.changed() => break,
        }
    }
    settle(&mut pending).await;
}

async fn settle(pending: &mut Vec<async_nats::jetstream::context::PublishAckFuture>) {
    for ack in pending.drain(..) {
        if let Err(e) = ack.await {
            tracing::warn!(error = %e, "JetStream did not accept a monitoring event");
        }
    }
}

/// Pulls events in batches, writes their rollups with the last stream sequence, then acks.
pub(super) async fn consume(bus: Bus, db: Db, flush: Duration, mut shutdown: watch::Receiver<bool>) {
    let name = format!("nats:{}", bus.stream);
    let mut consumer = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let c = match &consumer {
            Some(c) => c,
            None => match bus.consumer().await {
                Ok(c) => consumer.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, "monitoring consumer unavailable; retrying");
                    wait(flush, &mut shutdown).await;
                    continue;
                }
            },
        };
        let messages = match c.fetch().max_messages(1000).expires(flush).messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "monitoring fetch failed; retrying");
                consumer = None;
                wait(flush, &mut shutdown).await;
                continue;
            }
        };
        let mut messages = std::pin::pin!(messages);
        let mut batch = rollup::Batch::default();
        let mut last = None;
        while let Some(m) = messages.next().await {
            let Ok(m) = m else { break };
            let Ok(seq) = m.info().map(|i| i64::try_from(i.stream_sequence).unwrap_or(i64::MAX)) else { continue };
            match serde_json::from_slice::<CallEvent>(&m.payload) {
                Ok(e) => batch.add(&e),
                Err(e) => tracing::warn!(error = %e, seq, "skipping a malformed monitoring event"),
            }
            last = Some((seq, m));
        }
        let Some((seq, m)) = last else { continue };
        match batch.write(&db, Some((&name, seq))).await {
            Ok(_) => {
                if let Err(e) = m.ack().await {
                    tracing::warn!(error = %e, "could not acknowledge monitoring events; they will be redelivered and skipped");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not write monitoring rollups; the events will be redelivered"),
        }
    }
}

async fn wait(d: Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.changed() => {}
    }
}
