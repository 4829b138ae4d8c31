//! tlogd's own count of what it appended, scraped from `/metrics` on its HTTP listener before and after a write
//! run, to check that its counters agree with what this load generator saw acknowledged.

use std::time::Duration;

use prometheus_parse::{Scrape, Value};

/// `tlog_entries_appended_total` of the tlogd whose HTTP listener is `http` (`http://HOST:PORT`); `None` (said on
/// stderr) when it cannot be read, so a server without the endpoint still runs the benchmark.
pub(crate) async fn entries_appended(http: &str) -> Option<f64> {
    let read = async {
        let client =
            tlog_client::http::http_client(Duration::from_secs(10)).map_err(|e| e.to_string())?;
        let text = client
            .get(format!("{http}/metrics"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let scrape =
            Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).map_err(|e| e.to_string())?;
        scrape
            .samples
            .iter()
            .find(|s| s.metric == "tlog_entries_appended_total")
            .and_then(|s| match s.value {
                Value::Counter(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
            .ok_or_else(|| "no tlog_entries_appended_total".to_owned())
    };
    match read.await {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("load: metrics: cannot read {http}/metrics: {e}");
            None
        }
    }
}
