//! The wall clock stepping backwards or far forwards (issue 19): checkpoint timestamps never go backwards, and
//! the log never stops taking writes, across restarts too. The sequencer reads the injected [`ManualClock`].

use std::sync::Arc;

use tlog_checkpoint::{MAX_TIMESTAMP, SignerKey, verify_checkpoint};
use tlog_server::ManualClock;
use tlog_server::log::{Appender, LogOptions, Shutdown, open};
use tlog_storage::{MemoryBackend, MemoryStore};

const ORIGIN: &str = "example.com/clock";
const NOW: u64 = 1_800_000_000;

fn key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [9; 32]).unwrap()
}

fn start(store: &Arc<MemoryStore>, clock: &Arc<ManualClock>) -> (Appender, Shutdown) {
    let options = LogOptions {
        clock: clock.clone(),
        ..LogOptions::default()
    };
    let (appender, _reader, shutdown) = open(store.clone(), key(), options).unwrap();
    (appender, shutdown)
}

fn store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::open(MemoryBackend::new()).unwrap())
}

/// Writes one new entry and returns the timestamp of the checkpoint that covers it (checked against its
/// signature: the timestamp is the signed one).
async fn write(log: &Appender, n: u64) -> u64 {
    let committed = log
        .submit(vec![format!("{{\"clock\":{n}}}").into_bytes()])
        .await
        .unwrap_or_else(|e| panic!("write {n} refused: the log stopped: {e}"));
    let signed =
        verify_checkpoint(&key().verifier(), committed.checkpoint.note.as_bytes()).unwrap();
    assert_eq!(signed.timestamp, committed.checkpoint.timestamp);
    signed.timestamp
}

#[tokio::test]
async fn a_clock_stepping_back_never_makes_timestamps_go_backwards() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (log, _shutdown) = start(&store(), &clock);
    assert_eq!(write(&log, 0).await, NOW);
    clock.set(NOW - 3600);
    assert_eq!(
        write(&log, 1).await,
        NOW,
        "an hour back: the timestamp stays at the newest one"
    );
    clock.set(NOW + 5);
    assert_eq!(
        write(&log, 2).await,
        NOW + 5,
        "the clock ahead again: timestamps follow it"
    );
}

#[tokio::test]
async fn a_clock_stepping_far_forward_and_back_keeps_the_log_writing() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (log, _shutdown) = start(&store(), &clock);
    write(&log, 0).await;
    let future = NOW + 100 * 365 * 86_400;
    clock.set(future);
    assert_eq!(write(&log, 1).await, future);
    // Back to the right time: the log goes on, stamping the future time until the clock passes it.
    clock.set(NOW + 10);
    assert_eq!(write(&log, 2).await, future);
    assert_eq!(write(&log, 3).await, future);
}

#[tokio::test]
async fn a_clock_beyond_the_largest_signable_time_does_not_stop_the_log() {
    let clock = Arc::new(ManualClock::new(NOW));
    let (log, _shutdown) = start(&store(), &clock);
    write(&log, 0).await;
    // A clock beyond 2^63 - 1 seconds, the most a cosignature timestamp may carry (C2SP tlog-cosignature).
    clock.set(u64::MAX);
    assert_eq!(write(&log, 1).await, MAX_TIMESTAMP);
    clock.set(NOW);
    assert_eq!(write(&log, 2).await, MAX_TIMESTAMP);
}

#[tokio::test]
async fn after_a_restart_with_the_clock_behind_timestamps_still_do_not_go_backwards() {
    let store = store();
    let clock = Arc::new(ManualClock::new(NOW));
    let (log, shutdown) = start(&store, &clock);
    write(&log, 0).await;
    drop(log);
    shutdown.wait();

    clock.set(NOW - 86_400);
    let (log, _shutdown) = start(&store, &clock);
    assert_eq!(
        log.latest().timestamp,
        NOW,
        "the recovered checkpoint keeps its time"
    );
    assert_eq!(
        write(&log, 1).await,
        NOW,
        "a day back after a restart: the timestamp stays at the newest one"
    );
}
