//! Test hooks: two places where a process can be told to stop dead, so that a crash test can
//! kill a real service at an exact moment rather than hope a signal lands in a window of a few
//! microseconds: after commits are stored and before the relay publishes their outboxes
//! (`before-publish`), and after a message's effect is durable and before it is acknowledged
//! (`before-ack`).
//!
//! Inert unless the environment variable `ALPES_FAULT` is set when the process first reaches a
//! hook (it is read once). Its value is `<point>[:<text>]...`: the fault holds at `<point>` when
//! every `<text>` occurs in the place (the topics and keys of the messages concerned), e.g.
//! `before-ack:conversion-attributed:<saga id>`. The held task writes
//! `ALPES_FAULT held <point>: <place>` to standard error and never goes on; the test then kills
//! the process. Never set in production.

use std::sync::LazyLock;

use pulsar::consumer::Message;

use crate::Outgoing;

const VARIABLE: &str = "ALPES_FAULT";

/// The point a fault is set at, and the texts its place must contain.
static FAULT: LazyLock<Option<(String, Vec<String>)>> = LazyLock::new(|| {
    let value = std::env::var(VARIABLE).ok().filter(|v| !v.is_empty())?;
    let mut parts = value.split(':').map(str::to_owned);
    let point = parts.next()?;
    Some((point, parts.collect()))
});

/// The relay is about to publish `messages`, whose commits are stored.
pub async fn before_publish<'a>(messages: impl IntoIterator<Item = &'a Outgoing>) {
    hold("before-publish", || {
        let places: Vec<String> = messages
            .into_iter()
            .map(|m| format!("{} {}", m.topic, m.key))
            .collect();
        places.join(" ")
    })
    .await;
}

/// `message` was handled and its effect is durable; its ack comes next.
pub(crate) async fn before_ack(message: &Message<Vec<u8>>) {
    hold("before-ack", || {
        let key = message.metadata().partition_key.as_deref();
        format!("{} {}", message.topic, key.unwrap_or_default())
    })
    .await;
}

async fn hold(point: &str, place: impl FnOnce() -> String) {
    let Some((wanted, texts)) = FAULT.as_ref() else {
        return;
    };
    if wanted != point {
        return;
    }
    let place = place();
    if !texts.iter().all(|text| place.contains(text.as_str())) {
        return;
    }
    tracing::error!(point, %place, "{VARIABLE} is set: holding here until the process is killed");
    eprintln!("{VARIABLE} held {point}: {place}");
    std::future::pending::<()>().await;
}
