//! Checkpoint note text (C2SP tlog-checkpoint v1.0.0, "Note text").

use tlog_core::{Hash, TreeSize};

use crate::error::Error;
use crate::note::check_text_chars;
use crate::{decode_base64, encode_base64};

/// A log's tree head as checkpoint note text:
///
/// ```text
/// <origin>
/// <tree size, decimal, no leading zeros>
/// <base64 of the 32-byte root hash>
/// [extension lines]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// Unique identifier of the log, e.g. `example.com/log42`.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: TreeSize,
    /// RFC 9162 root hash of the tree at `size`.
    pub root: Hash,
    /// Opaque, non-empty extra lines (NOT RECOMMENDED by the spec; monitors cannot audit them).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines. The origin must be a non-empty line without control characters.
    pub fn new(origin: impl Into<String>, size: TreeSize, root: Hash) -> Result<Self, Error> {
        let checkpoint = Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        };
        checkpoint.validate()?;
        Ok(checkpoint)
    }

    /// Checks that the origin and extension lines are non-empty lines without control characters, i.e. that
    /// [`Checkpoint::to_body`] yields a body [`Checkpoint::parse`] reads back unchanged. The fields are public,
    /// so signers call this before trusting them.
    pub fn validate(&self) -> Result<(), Error> {
        check_line(&self.origin, "origin line is empty")?;
        self.extensions
            .iter()
            .try_for_each(|line| check_line(line, "extension line is empty"))
    }

    /// The note text, final newline included.
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            encode_base64(self.root.as_bytes())
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// Parses a checkpoint body strictly: at least three newline-terminated non-empty lines, a decimal size
    /// without sign or leading zeros that fits in 64 bits, and canonical padded base64 of exactly 32 bytes.
    pub fn parse(body: &str) -> Result<Self, Error> {
        check_text_chars(body)?;
        let body = body
            .strip_suffix('\n')
            .ok_or(Error::BadCheckpoint("body does not end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size = lines
            .next()
            .ok_or(Error::BadCheckpoint("missing tree size line"))?;
        let root = lines
            .next()
            .ok_or(Error::BadCheckpoint("missing root hash line"))?;
        let checkpoint = Checkpoint {
            origin: origin.to_owned(),
            size: parse_size(size)?,
            root: parse_root(root)?,
            extensions: lines.map(str::to_owned).collect(),
        };
        checkpoint.validate()?;
        Ok(checkpoint)
    }
}

fn check_line(line: &str, empty: &'static str) -> Result<(), Error> {
    if line.is_empty() {
        return Err(Error::BadCheckpoint(empty));
    }
    if line.contains('\n') {
        return Err(Error::BadCheckpoint("a field contains a newline"));
    }
    check_text_chars(line)
}

fn parse_size(line: &str) -> Result<TreeSize, Error> {
    // `u64::from_str` alone would accept a leading `+`; the spec allows ASCII digits only.
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::BadCheckpoint("tree size is not a decimal number"));
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(Error::BadCheckpoint("tree size has a leading zero"));
    }
    line.parse()
        .map(TreeSize)
        .map_err(|_| Error::BadCheckpoint("tree size does not fit in 64 bits"))
}

fn parse_root(line: &str) -> Result<Hash, Error> {
    let bytes = decode_base64(line)
        .map_err(|_| Error::BadCheckpoint("root hash is not canonical base64"))?;
    Hash::from_slice(&bytes).ok_or(Error::BadCheckpoint("root hash is not 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of C2SP tlog-checkpoint and tlog-cosignature.
    const SPEC_BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn spec_example_round_trips() {
        let c = Checkpoint::parse(SPEC_BODY).unwrap();
        assert_eq!(c.origin, "example.com/behind-the-sofa");
        assert_eq!(c.size, TreeSize(20852163));
        assert_eq!(
            c.root.to_hex(),
            "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
        );
        assert!(c.extensions.is_empty());
        assert_eq!(c.to_body(), SPEC_BODY);
    }

    #[test]
    fn extensions_and_extremes_round_trip() {
        for size in [0, 1, 10, u64::MAX] {
            let mut c = Checkpoint::new("log.example/ü", TreeSize(size), Hash([0xfb; 32])).unwrap();
            assert_eq!(Checkpoint::parse(&c.to_body()).unwrap(), c);
            c.extensions = vec!["ext one".into(), "— two".into()];
            assert_eq!(Checkpoint::parse(&c.to_body()).unwrap(), c);
        }
    }

    #[test]
    fn strict_parse() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        let bad_checkpoint = [
            format!("o\n1\n{root}"),
            format!("o\n1\n{root}\n\n"),
            format!("o\n1\n{root}\next\n\n"),
            format!("\n1\n{root}\n"),
            "o\n1\n".to_owned(),
            "o\n".to_owned(),
            "\n".to_owned(),
            String::new(),
            format!("o\n01\n{root}\n"),
            format!("o\n00\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n 1\n{root}\n"),
            format!("o\n1 \n{root}\n"),
            format!("o\n1.0\n{root}\n"),
            format!("o\n0x1\n{root}\n"),
            format!("o\n\n{root}\n"),
            format!("o\n١\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            "o\n1\nAAAA\n".to_owned(),
            format!("o\n1\n{root}AAAA\n"),
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".to_owned(),
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_owned(),
            "o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".to_owned(),
            format!("o\n1\n {root}\n"),
            "o\n1\n\n".to_owned(),
        ];
        for body in bad_checkpoint {
            assert!(
                matches!(Checkpoint::parse(&body), Err(Error::BadCheckpoint(_))),
                "{body:?}"
            );
        }
        assert_eq!(
            Checkpoint::parse(&format!("o\r\n1\n{root}\n")),
            Err(Error::ControlCharacter)
        );
        assert_eq!(
            Checkpoint::parse(&format!("o\n1\n{root}\nx\ty\n")),
            Err(Error::ControlCharacter)
        );
    }

    #[test]
    fn invalid_fields_are_refused() {
        assert!(matches!(
            Checkpoint::new("", TreeSize(0), Hash([0; 32])),
            Err(Error::BadCheckpoint(_))
        ));
        assert!(matches!(
            Checkpoint::new("a\nb", TreeSize(0), Hash([0; 32])),
            Err(Error::BadCheckpoint(_))
        ));
        assert_eq!(
            Checkpoint::new("a\u{7}", TreeSize(0), Hash([0; 32])),
            Err(Error::ControlCharacter)
        );
        let mut c = Checkpoint::new("a", TreeSize(0), Hash([0; 32])).unwrap();
        c.extensions = vec![String::new()];
        assert!(matches!(c.validate(), Err(Error::BadCheckpoint(_))));
        c.extensions = vec!["x\ny".into()];
        assert!(matches!(c.validate(), Err(Error::BadCheckpoint(_))));
    }
}
