//! The `tlog-witness` process killed with SIGKILL at random moments while a log feeds it growing checkpoints (and
//! now and then a fork's), restarted each time on the same data folder. Across all of it, in the order the answers
//! arrived: no size is cosigned with two roots, no cosigned size is smaller than one cosigned before, and after
//! each restart the witness names (409) a size at least the last one it cosigned.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{Process, TestLog, client, drain, log_key, post, spawn_binary};
use tlog_checkpoint::witness::SIZE_CONTENT_TYPE;
use tlog_core::Hash;

const LEAVES: u64 = 40_000;
const KILLS: usize = 25;

/// A small xorshift generator: the test needs varied timings, not good randomness. The seed is printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Starts the binary on a free port; returns the add-checkpoint URL.
fn spawn(dir: &Path) -> (Process, String) {
    let args = [
        "--name".into(),
        "witness.example/w1".into(),
        "--log".into(),
        log_key().verifier().to_string(),
    ];
    let (process, addr, stdout) = spawn_binary(dir, &args);
    drain(stdout);
    (process, format!("http://{addr}/add-checkpoint"))
}

/// Every 200 in arrival order, as (size, root).
type Cosigned = Arc<Mutex<Vec<(u64, Hash)>>>;

/// Feeds the witness at `url` until a request fails (the process was killed). `old` is the size the log
/// believes the witness cosigned last; it follows 409s. One request in ten carries the fork's checkpoint.
async fn feed(
    url: String,
    logs: Arc<[TestLog; 2]>,
    old: Arc<Mutex<u64>>,
    cosigned: Cosigned,
    seed: u64,
) {
    let client = client();
    let mut rng = Rng(seed | 1);
    loop {
        let from = *old.lock().unwrap();
        let target = (from + 1 + rng.below(20)).min(LEAVES);
        let fork = rng.below(10) == 0;
        let log = &logs[usize::from(fork)];
        let Ok(answer) = post(&client, &url, log.request(from, target)).await else {
            return;
        };
        match answer.status {
            200 => {
                cosigned.lock().unwrap().push((target, log.root(target)));
                *old.lock().unwrap() = target;
            }
            409 if answer.content_type.as_deref() == Some(SIZE_CONTENT_TYPE) => {
                *old.lock().unwrap() = answer.body.trim_end().parse().unwrap();
            }
            409 | 422 if fork => {}
            status => panic!("unexpected {status} (fork: {fork}): {answer:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_rolls_back_or_forks() {
    let started = Instant::now();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    // The fork differs from the first entry on, so once the witness has cosigned the log it must refuse the fork.
    let logs = Arc::new([
        TestLog::new(log_key(), LEAVES, None),
        TestLog::new(log_key(), LEAVES, Some(0)),
    ]);
    let old = Arc::new(Mutex::new(0));
    let cosigned: Cosigned = Arc::default();
    let client = client();
    let mut restarts = 0;
    for round in 0..=KILLS {
        let (process, url) = spawn(dir.path());
        let last = cosigned.lock().unwrap().last().copied();
        match last {
            // Nothing cosigned yet: the first checkpoint is the log's, so the fork can never be the witness's.
            None => {
                let answer = post(&client, &url, logs[0].request(0, 10)).await.unwrap();
                if answer.status == 200 {
                    cosigned.lock().unwrap().push((10, logs[0].root(10)));
                    *old.lock().unwrap() = 10;
                }
            }
            Some((size, _)) => {
                let answer = post(&client, &url, logs[0].request(0, size)).await.unwrap();
                assert_eq!(answer.status, 409, "after restart {round}: {answer:?}");
                let stored: u64 = answer.body.trim_end().parse().unwrap();
                assert!(
                    stored >= size,
                    "after restart {round}: stored {stored} < cosigned {size}"
                );
                restarts += 1;
            }
        }
        if round == KILLS {
            break;
        }
        let feeder = tokio::spawn(feed(
            url,
            logs.clone(),
            old.clone(),
            cosigned.clone(),
            rng.below(u64::MAX),
        ));
        tokio::time::sleep(Duration::from_millis(5 + rng.below(120))).await;
        drop(process); // SIGKILL
        feeder.await.unwrap();
    }
    let cosigned = cosigned.lock().unwrap();
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    let mut largest = 0;
    for &(size, root) in cosigned.iter() {
        assert!(size >= largest, "cosigned {size} after {largest}");
        largest = size;
        let previous = roots.insert(size, root);
        assert!(
            previous.is_none_or(|p| p == root),
            "two roots cosigned for size {size}"
        );
    }
    println!(
        "{} cosignatures up to size {largest}, {restarts} restarts checked, {:?}",
        cosigned.len(),
        started.elapsed()
    );
    assert_eq!(restarts, KILLS);
    assert!(
        cosigned.len() > KILLS,
        "too few cosignatures to mean anything"
    );
    assert!(
        largest < LEAVES,
        "the log ran out of entries; the last rounds tested nothing"
    );
}
