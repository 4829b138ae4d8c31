//! Audit events built from command-line flags, encoded as canonical JSON so that the same event always becomes
//! the same log entry (and so the same RFC 9162 leaf hash).
//!
//! Schema (every value is a JSON string; `details` may be empty):
//!
//! ```text
//! {"action":"<X>","actor":"<A>","details":{"<k>":"<v>",...},"resource":"<R>","time":"<RFC 3339 UTC>"}
//! ```
//!
//! The encoding is the RFC 8785 JSON Canonicalization Scheme restricted to strings: members sorted by the UTF-16
//! code units of their names (§3.2.3), no whitespace (§3.2.1), strings escaped as §3.2.2.2 prescribes, UTF-8
//! output (§3.2.4). `time` is normalised to UTC, `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with trailing zeros of the
//! fraction removed, so every instant has exactly one spelling whatever offset or unit it was given in.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::CliError;

/// A point in time, at most nanosecond precision, not before the Unix epoch and not after 9999-12-31 (the range
/// of an RFC 3339 `date-fullyear`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventTime {
    secs: u64,
    nanos: u32,
}

/// Seconds from the epoch to 10000-01-01T00:00:00Z, the first instant RFC 3339 cannot write.
const END_OF_9999: u64 = 253_402_300_800;

impl EventTime {
    /// The current time, to the second.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        EventTime { secs, nanos: 0 }
    }

    /// Seconds since the Unix epoch.
    pub fn from_unix(secs: u64) -> Result<Self, String> {
        if secs >= END_OF_9999 {
            return Err(format!(
                "unix time {secs} is after the year 9999, which RFC 3339 cannot write"
            ));
        }
        Ok(EventTime { secs, nanos: 0 })
    }

    /// Parses either decimal Unix seconds or an RFC 3339 §5.6 `date-time`
    /// (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `T` and `Z` may be lower case).
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let secs = text
                .parse::<u64>()
                .map_err(|_| format!("unix time {text} is too large"))?;
            return EventTime::from_unix(secs);
        }
        parse_rfc3339(text).map_err(|why| {
            format!(
                "{text:?} is not a time: {why} (use RFC 3339 such as 2024-05-01T12:00:00Z, or unix seconds)"
            )
        })
    }

    /// The canonical RFC 3339 UTC spelling.
    pub fn to_rfc3339(self) -> String {
        // Both divisions are by non-zero constants and `secs < END_OF_9999`, so the casts cannot truncate.
        let days = (self.secs / 86_400) as i64;
        let rem = self.secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        let mut out = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            let _ = write!(out, ".{}", frac.trim_end_matches('0'));
        }
        out.push('Z');
        out
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`], for non-negative day counts.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // `doy` is in 0..366 and `mp` in 0..12, so both fit a u32.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A cursor over the ASCII text of a timestamp.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize, what: &str) -> Result<u32, String> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| format!("{what} is missing"))?;
        let mut value = 0u32;
        for &b in head {
            if !b.is_ascii_digit() {
                return Err(format!("{what} must be {n} digits"));
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.rest = tail;
        Ok(value)
    }

    fn expect(&mut self, accepted: &[u8], what: &str) -> Result<u8, String> {
        match self.rest.split_first() {
            Some((&b, tail)) if accepted.contains(&b) => {
                self.rest = tail;
                Ok(b)
            }
            _ => Err(format!("expected {what}")),
        }
    }
}

fn parse_rfc3339(text: &str) -> Result<EventTime, String> {
    let mut c = Cursor {
        rest: text.as_bytes(),
    };
    let year = c.digits(4, "year")?;
    c.expect(b"-", "'-' after the year")?;
    let month = c.digits(2, "month")?;
    c.expect(b"-", "'-' after the month")?;
    let day = c.digits(2, "day")?;
    c.expect(b"Tt", "'T' between date and time")?;
    let hour = c.digits(2, "hour")?;
    c.expect(b":", "':' after the hour")?;
    let minute = c.digits(2, "minute")?;
    c.expect(b":", "':' after the minute")?;
    let second = c.digits(2, "second")?;
    let mut nanos = 0u32;
    if c.rest.first() == Some(&b'.') {
        c.rest = c.rest.get(1..).unwrap_or_default();
        let len = c.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 9 {
            return Err("the fraction of a second must have 1 to 9 digits".into());
        }
        nanos = c.digits(len, "fraction")? * 10u32.pow(9 - len as u32);
    }
    let offset_secs: i64 = match c.expect(b"Zz+-", "'Z' or a ±HH:MM offset")? {
        b'Z' | b'z' => 0,
        sign => {
            let oh = c.digits(2, "offset hour")?;
            c.expect(b":", "':' in the offset")?;
            let om = c.digits(2, "offset minute")?;
            if oh > 23 || om > 59 {
                return Err("offset out of range".into());
            }
            let magnitude = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -magnitude } else { magnitude }
        }
    };
    if !c.rest.is_empty() {
        return Err("unexpected text after the offset".into());
    }
    let year = i64::from(year);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("no such date".into());
    }
    if hour > 23 || minute > 59 {
        return Err("no such time of day".into());
    }
    if second > 59 {
        return Err("leap seconds (second 60) cannot be represented in unix time".into());
    }
    let local =
        days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = local - offset_secs;
    let secs = u64::try_from(utc).map_err(|_| "times before 1970 are not supported".to_owned())?;
    let time = EventTime::from_unix(secs)?;
    Ok(EventTime { nanos, ..time })
}

/// One `--detail key=value` flag.
pub fn parse_detail(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not key=value with a non-empty key")),
    }
}

/// An audit event: who did what to which resource, when, with free-form string details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    actor: String,
    action: String,
    resource: String,
    /// Sorted by the UTF-16 code units of the key, as RFC 8785 §3.2.3 orders members; keys are unique.
    details: Vec<(String, String)>,
    time: EventTime,
}

impl AuditEvent {
    /// Checks the fields: actor, action and resource must be non-empty, detail keys unique.
    pub fn new(
        actor: String,
        action: String,
        resource: String,
        mut details: Vec<(String, String)>,
        time: EventTime,
    ) -> Result<Self, CliError> {
        for (flag, value) in [
            ("--actor", &actor),
            ("--action", &action),
            ("--resource", &resource),
        ] {
            if value.is_empty() {
                return Err(CliError::Usage(format!("{flag} must not be empty")));
            }
        }
        details.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
        if let Some(pair) = details
            .windows(2)
            .find(|w| matches!(w, [a, b] if a.0 == b.0))
        {
            let key = pair.first().map_or("", |(k, _)| k.as_str());
            return Err(CliError::Usage(format!(
                "--detail {key}=... is given more than once; each key may appear once"
            )));
        }
        Ok(AuditEvent {
            actor,
            action,
            resource,
            details,
            time,
        })
    }

    /// The canonical JSON text: the exact bytes submitted as the log entry.
    pub fn to_canonical_json(&self) -> String {
        let mut out = String::from("{\"action\":");
        push_json_string(&mut out, &self.action);
        out.push_str(",\"actor\":");
        push_json_string(&mut out, &self.actor);
        out.push_str(",\"details\":{");
        for (i, (k, v)) in self.details.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, k);
            out.push(':');
            push_json_string(&mut out, v);
        }
        out.push_str("},\"resource\":");
        push_json_string(&mut out, &self.resource);
        out.push_str(",\"time\":");
        push_json_string(&mut out, &self.time.to_rfc3339());
        out.push('}');
        out
    }
}

/// RFC 8785 §3.2.2.2: `"` and `\` escaped, the five control characters with short escapes use them, the other
/// controls become `\u00xx` (lower-case hex), and everything else is written as-is.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> EventTime {
        EventTime::parse(s).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_and_has_no_whitespace() {
        let event = AuditEvent::new(
            "alice".into(),
            "delete".into(),
            "db/users".into(),
            vec![
                ("reason".into(), "cleanup".into()),
                ("count".into(), "3".into()),
                ("Zeta".into(), String::new()),
            ],
            t("2024-05-01T12:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            event.to_canonical_json(),
            r#"{"action":"delete","actor":"alice","details":{"Zeta":"","count":"3","reason":"cleanup"},"resource":"db/users","time":"2024-05-01T12:00:00Z"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&event.to_canonical_json()).unwrap();
        assert_eq!(parsed["details"]["count"], "3");
    }

    #[test]
    fn canonical_json_escapes_as_rfc8785() {
        let event = AuditEvent::new(
            "a\"b\\c".into(),
            "tab\there\nnl\u{1}\u{1f}\u{7f}".into(),
            "é€😀/".into(),
            Vec::new(),
            t("0"),
        )
        .unwrap();
        assert_eq!(
            event.to_canonical_json(),
            "{\"action\":\"tab\\there\\nnl\\u0001\\u001f\u{7f}\",\"actor\":\"a\\\"b\\\\c\",\"details\":{},\
             \"resource\":\"é€😀/\",\"time\":\"1970-01-01T00:00:00Z\"}"
        );
        // Whatever it contains, the output is JSON that decodes to the original strings.
        let parsed: serde_json::Value = serde_json::from_str(&event.to_canonical_json()).unwrap();
        assert_eq!(parsed["actor"], "a\"b\\c");
        assert_eq!(parsed["action"], "tab\there\nnl\u{1}\u{1f}\u{7f}");
    }

    #[test]
    fn detail_keys_sort_by_utf16_code_units() {
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16, so it sorts before U+FF61 there, although it sorts
        // after it by code point and in UTF-8.
        let event = AuditEvent::new(
            "a".into(),
            "b".into(),
            "c".into(),
            vec![("｡".into(), "2".into()), ("😀".into(), "1".into())],
            t("0"),
        )
        .unwrap();
        let json = event.to_canonical_json();
        assert!(json.contains(r#""details":{"😀":"1","｡":"2"}"#), "{json}");
    }

    #[test]
    fn events_are_checked() {
        let make = |actor: &str, details: Vec<(String, String)>| {
            AuditEvent::new(actor.into(), "x".into(), "r".into(), details, t("0"))
        };
        assert!(matches!(make("", vec![]), Err(CliError::Usage(_))));
        let dup = vec![("k".into(), "1".into()), ("k".into(), "2".into())];
        match make("a", dup) {
            Err(CliError::Usage(msg)) => assert!(msg.contains("--detail k="), "{msg}"),
            other => panic!("expected a usage error, got {other:?}"),
        }
        assert_eq!(parse_detail("k=v=w").unwrap(), ("k".into(), "v=w".into()));
        assert_eq!(parse_detail("k=").unwrap(), ("k".into(), String::new()));
        assert!(parse_detail("=v").is_err());
        assert!(parse_detail("novalue").is_err());
    }

    #[test]
    fn times_normalise_to_one_utc_spelling() {
        let same = [
            "2024-05-01T12:00:00Z",
            "2024-05-01t12:00:00z",
            "2024-05-01T14:30:00+02:30",
            "2024-05-01T07:00:00-05:00",
            "2024-05-01T12:00:00.000Z",
            "1714564800",
        ];
        for s in same {
            assert_eq!(t(s).to_rfc3339(), "2024-05-01T12:00:00Z", "{s}");
            assert_eq!(t(s).secs, 1_714_564_800, "{s}");
        }
        assert_eq!(
            t("2024-02-29T23:59:59.120Z").to_rfc3339(),
            "2024-02-29T23:59:59.12Z"
        );
        assert_eq!(
            t("2000-01-01T00:00:00.000000001+00:00").to_rfc3339(),
            "2000-01-01T00:00:00.000000001Z"
        );
        assert_eq!(t("9999-12-31T23:59:59Z").secs, END_OF_9999 - 1);
        assert_eq!(t("1970-01-01T01:00:00+01:00").secs, 0);
    }

    #[test]
    fn calendar_round_trips() {
        for days in (0..END_OF_9999 as i64 / 86_400).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn bad_times_are_rejected() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:60Z",
            "2024-05-01T12:00:00",
            "2024-05-01 12:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00.1234567890Z",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00+0100",
            "2024-05-01T12:00:00Zjunk",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:59:59+01:00",
            "-5",
            "1.5",
            "253402300800",
            "99999999999999999999999",
        ] {
            assert!(EventTime::parse(bad).is_err(), "{bad:?}");
        }
    }
}
