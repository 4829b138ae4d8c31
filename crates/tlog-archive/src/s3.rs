//! The S3 side: `s3://bucket/prefix` and the AWS environment into an object store with conditional puts, and the
//! bucket's Object Lock (the two bucket-level requests object_store does not make, signed with its SigV4
//! signer).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest, Md5};
use object_store::aws::{
    AmazonS3Builder, AwsAuthorizer, AwsCredential, Checksum, S3ConditionalPut,
};
use object_store::client::HttpRequestBody;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use tlog_checkpoint::VerifierKey;

use crate::archive::Archive;
use crate::error::{Error, Result};

/// Where an archive lives: `s3://<bucket>/<prefix>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Below the bucket, without leading or trailing slash; may be empty.
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| Error::Config(format!("{url:?}: an archive is s3://bucket/prefix")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Config(format!("{url:?}: no bucket")));
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Endpoint, region and credentials, as the usual AWS environment variables give them.
#[derive(Clone)]
pub struct S3Config {
    /// `AWS_ENDPOINT_URL`: an S3-compatible store; unset means AWS S3 of the region.
    pub endpoint: Option<String>,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`), default `us-east-1`.
    pub region: String,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<String>,
    /// `AWS_ALLOW_HTTP=true`: plain HTTP to the endpoint (a local test store).
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// From the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From `var` (a variable's value by name): the environment, or a test's settings.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let need = |name: &str| {
            var(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        Ok(S3Config {
            endpoint: var("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "us-east-1".to_owned()),
            access_key_id: need("AWS_ACCESS_KEY_ID")?,
            secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN").filter(|v| !v.is_empty()),
            allow_http: var("AWS_ALLOW_HTTP").is_some_and(|v| v == "true" || v == "1"),
        })
    }

    fn endpoint(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }

    fn credential(&self) -> AwsCredential {
        AwsCredential {
            key_id: self.access_key_id.clone(),
            secret_key: self.secret_access_key.clone(),
            token: self.session_token.clone(),
        }
    }
}

/// The object store of `bucket`: path-style requests, conditional puts by ETag (`If-None-Match` / `If-Match`),
/// a SHA-256 checksum on every put (S3 demands a checksum on puts into an Object Lock bucket), and few retries
/// (the archiver retries on its own schedule, so an outage does not hold a request for minutes).
pub fn object_store(config: &S3Config, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    install_crypto_provider();
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&config.region)
        .with_access_key_id(&config.access_key_id)
        .with_secret_access_key(&config.secret_access_key)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_checksum_algorithm(Checksum::SHA256)
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            ..RetryConfig::default()
        })
        .with_client_options(
            // Client options replace the builder's: allow_http is set here, not with the builder's setter.
            ClientOptions::new()
                .with_allow_http(config.allow_http)
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(30)),
        );
    if let Some(endpoint) = &config.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(token) = &config.session_token {
        builder = builder.with_token(token);
    }
    Ok(Arc::new(builder.build()?))
}

/// The archive at `location` of the log signed by `key`.
pub fn open(location: &S3Location, config: &S3Config, key: VerifierKey) -> Result<Archive> {
    Ok(Archive::new(
        object_store(config, &location.bucket)?,
        &location.prefix,
        key,
    ))
}

/// A bucket's default Object Lock retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// `COMPLIANCE` (nobody can shorten or remove it) or `GOVERNANCE` (special permission can).
    pub mode: String,
    /// The retention of each new object version, in days.
    pub days: u32,
}

/// Creates `bucket` with Object Lock enabled (or finds it), and sets its default retention to COMPLIANCE for
/// `days` when it has none. A bucket without Object Lock, or whose retention is not COMPLIANCE for at least
/// `days`, is an error: the archive would not be write-once. Returns the retention in force.
pub async fn init_bucket(config: &S3Config, bucket: &str, days: u32) -> Result<Retention> {
    let client = Client::new(config)?;
    let (status, body) = status_and_text(
        client
            .send(
                http::Method::PUT,
                bucket,
                "",
                &[("x-amz-bucket-object-lock-enabled", "true")],
                Bytes::new(),
            )
            .await?,
    )
    .await?;
    // 409: it exists (BucketAlreadyOwnedByYou); whether it has Object Lock is checked below.
    if !status.is_success() && status != http::StatusCode::CONFLICT {
        return Err(Error::S3 {
            what: "create bucket",
            detail: format!("{status}: {body}"),
        });
    }
    if let Some(retention) = lock_status(config, bucket).await? {
        return check_retention(retention, days);
    }
    let xml = format!(
        "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode>\
         <Days>{days}</Days></DefaultRetention></Rule></ObjectLockConfiguration>"
    );
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(xml.as_bytes()));
    let (status, body) = status_and_text(
        client
            .send(
                http::Method::PUT,
                bucket,
                "object-lock",
                &[("content-md5", &md5)],
                Bytes::from(xml),
            )
            .await?,
    )
    .await?;
    if !status.is_success() {
        return Err(Error::S3 {
            what: "set the default retention",
            detail: format!("{status}: {body}"),
        });
    }
    let retention = lock_status(config, bucket)
        .await?
        .ok_or_else(|| Error::ObjectLock("the default retention did not take".into()))?;
    check_retention(retention, days)
}

fn check_retention(retention: Retention, days: u32) -> Result<Retention> {
    if retention.mode != "COMPLIANCE" || retention.days < days {
        return Err(Error::ObjectLock(format!(
            "default retention is {} for {} days; the archive needs COMPLIANCE for at least {days}",
            retention.mode, retention.days
        )));
    }
    Ok(retention)
}

/// The bucket's default retention: `None` when Object Lock is on but has no default rule. A bucket without
/// Object Lock is an error.
pub async fn lock_status(config: &S3Config, bucket: &str) -> Result<Option<Retention>> {
    let client = Client::new(config)?;
    let (status, body) = status_and_text(
        client
            .send(http::Method::GET, bucket, "object-lock", &[], Bytes::new())
            .await?,
    )
    .await?;
    if status == http::StatusCode::NOT_FOUND {
        return Err(Error::ObjectLock(format!(
            "bucket {bucket} has no Object Lock (or does not exist): {body}"
        )));
    }
    if !status.is_success() {
        return Err(Error::S3 {
            what: "read the Object Lock configuration",
            detail: format!("{status}: {body}"),
        });
    }
    if xml_field(&body, "ObjectLockEnabled") != Some("Enabled") {
        return Err(Error::ObjectLock(format!(
            "bucket {bucket} does not have Object Lock enabled"
        )));
    }
    let Some(mode) = xml_field(&body, "Mode") else {
        return Ok(None);
    };
    let days = match (xml_field(&body, "Days"), xml_field(&body, "Years")) {
        (Some(days), _) => days.parse().ok(),
        (None, Some(years)) => years.parse::<u32>().ok().map(|y| y.saturating_mul(365)),
        (None, None) => None,
    }
    .ok_or_else(|| Error::ObjectLock(format!("unreadable default retention: {body}")))?;
    Ok(Some(Retention {
        mode: mode.to_owned(),
        days,
    }))
}

/// The text of the first `<name>...</name>` element: the configuration documents are flat and small.
fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + len].trim())
}

/// Signed requests object_store does not make (bucket settings; object versions, for tests).
pub(crate) struct Client {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credential: AwsCredential,
}

impl Client {
    pub(crate) fn new(config: &S3Config) -> Result<Self> {
        install_crypto_provider();
        if config.endpoint().starts_with("http://") && !config.allow_http {
            return Err(Error::Config(
                "AWS_ENDPOINT_URL is http:// but AWS_ALLOW_HTTP is not true".into(),
            ));
        }
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            endpoint: config.endpoint(),
            region: config.region.clone(),
            credential: config.credential(),
        })
    }

    /// `method` on `<endpoint>/<path>[?<query>]` (path style: `path` is the bucket, or `bucket/key`), signed
    /// with SigV4: the one place requests outside `object_store` are signed.
    pub(crate) async fn send(
        &self,
        method: http::Method,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<reqwest::Response> {
        let mut url = format!("{}/{path}", self.endpoint);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let mut request = http::Request::builder().method(method.clone()).uri(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request
            .body(HttpRequestBody::from(body.clone()))
            .map_err(|e| Error::Config(format!("{url}: {e}")))?;
        AwsAuthorizer::new(&self.credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| Error::S3 {
                what: "sign a request",
                detail: e.to_string(),
            })?;
        Ok(self
            .http
            .request(method, &url)
            .headers(request.headers().clone())
            .body(body)
            .send()
            .await?)
    }
}

/// An answer's status and text.
pub(crate) async fn status_and_text(
    response: reqwest::Response,
) -> Result<(http::StatusCode, String)> {
    let status = response.status();
    Ok((status, response.text().await?))
}

/// reqwest is built without a TLS provider of its own (as tlog-client's HTTP client): install ring's.
fn install_crypto_provider() {
    // Fails only when one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_splits_bucket_and_prefix() {
        let location = S3Location::parse("s3://logs/prod/tlog/").unwrap();
        assert_eq!(location.bucket, "logs");
        assert_eq!(location.prefix, "prod/tlog");
        assert_eq!(S3Location::parse("s3://logs").unwrap().prefix, "");
        assert!(S3Location::parse("https://logs").is_err());
        assert!(S3Location::parse("s3:///x").is_err());
    }

    #[test]
    fn retention_must_be_compliance_for_at_least_the_days_asked() {
        let retention = |mode: &str, days| Retention {
            mode: mode.into(),
            days,
        };
        assert!(check_retention(retention("COMPLIANCE", 30), 30).is_ok());
        assert!(check_retention(retention("COMPLIANCE", 29), 30).is_err());
        assert!(check_retention(retention("GOVERNANCE", 3650), 30).is_err());
    }
}
