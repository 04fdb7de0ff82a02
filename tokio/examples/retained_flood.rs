//! How long a `#` subscriber takes to receive many retained messages from a broker.
//!
//! ```text
//! cargo run --release --example retained_flood -- mqtt://127.0.0.1:1883 [COUNT] [QOS]
//! ```
//!
//! Stores COUNT (default 20 000) retained messages `flood/<i % 100>/<i>` at QOS
//! (default 1; 100 publishes in flight), then subscribes `flood/#` at that QoS and
//! prints the time from the SUBSCRIBE to the last message, and the load average.
//! Clears the messages afterwards.

use std::time::Instant;

use futures_util::future::join_all;
use mqtt_sansio::QoS;
use mqtt_sansio_tokio::{Client, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: retained_flood URL [COUNT] [QOS]")?;
    let count: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let qos = match args.next().as_deref() {
        None | Some("1") => QoS::AtLeastOnce,
        Some("0") => QoS::AtMostOnce,
        Some("2") => QoS::ExactlyOnce,
        Some(q) => return Err(format!("QoS {q}?").into()),
    };
    let connect = |id: &str| {
        let mut o = Options::new(url.clone());
        o.client_id = id.to_string();
        Client::connect(o)
    };
    let (publisher, _) = connect("flood-publisher").await?;
    let topics: Vec<String> = (0..count)
        .map(|i| format!("flood/{}/{i}", i % 100))
        .collect();
    for chunk in topics.chunks(100) {
        for r in join_all(
            chunk
                .iter()
                .map(|t| publisher.publish(t, qos, true, &b"x"[..])),
        )
        .await
        {
            r?;
        }
    }
    let (subscriber, mut messages) = connect("flood-subscriber").await?;
    let start = Instant::now();
    subscriber.subscribe(&[("flood/#", qos)]).await?;
    let mut got = 0;
    while got < count {
        match tokio::time::timeout(std::time::Duration::from_secs(10), messages.recv()).await {
            Ok(Some(_)) => got += 1,
            Ok(None) => return Err(format!("closed after {got} messages").into()),
            Err(_) => return Err(format!("stalled after {got} messages").into()),
        }
    }
    let took = start.elapsed();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{url}: {count} retained messages at {qos:?} in {:.3} s (load average {})",
        took.as_secs_f64(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    subscriber.disconnect().await?;
    for chunk in topics.chunks(100) {
        for r in join_all(
            chunk
                .iter()
                .map(|t| publisher.publish(t, qos, true, Vec::new())),
        )
        .await
        {
            r?;
        }
    }
    publisher.disconnect().await?;
    Ok(())
}
