//! A throwaway SeaweedFS for tests, started by `scripts/seaweedfs.sh` (which installs it when it is missing).
//! Starting it fails loudly rather than skipping: a test that needs the object store and cannot have it must not
//! pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;

use crate::s3::{Client, S3Config, status_and_text};

/// A running SeaweedFS; stopped (and its data removed) on drop.
pub struct SeaweedFs {
    dir: tempfile::TempDir,
    config: S3Config,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/seaweedfs.sh")
}

impl SeaweedFs {
    /// Starts a server on free loopback ports. Panics when it cannot.
    pub fn start() -> SeaweedFs {
        let dir = tempfile::tempdir().expect("temporary folder for SeaweedFS");
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/seaweedfs.sh");
        assert!(
            out.status.success(),
            "scripts/seaweedfs.sh start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let config = Self::read_env(dir.path());
        SeaweedFs { dir, config }
    }

    /// One server shared by the tests of a binary that run at the same time (each uses its own bucket): it
    /// stops when the last of them lets go of it.
    pub fn shared() -> Arc<SeaweedFs> {
        static SHARED: Mutex<Weak<SeaweedFs>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = shared.upgrade() {
            return running;
        }
        let running = Arc::new(SeaweedFs::start());
        *shared = Arc::downgrade(&running);
        running
    }

    fn read_env(dir: &Path) -> S3Config {
        let text = std::fs::read_to_string(dir.join("env")).expect("SeaweedFS env file");
        let vars: Vec<(String, String)> = text
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        S3Config::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("SeaweedFS env file has the AWS settings")
    }

    /// The `weed` process's id (to read its CPU time), while it runs.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Endpoint and credentials.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// The variables a child process (tlogd) needs to reach it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "AWS_ENDPOINT_URL",
                self.config.endpoint.clone().unwrap_or_default(),
            ),
            ("AWS_ACCESS_KEY_ID", self.config.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.config.secret_access_key.clone(),
            ),
            ("AWS_REGION", self.config.region.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// Stops the server (its data stays), as an outage would.
    pub fn stop(&self) {
        let status = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status()
            .expect("run scripts/seaweedfs.sh stop");
        assert!(status.success(), "scripts/seaweedfs.sh stop failed");
    }

    /// Starts it again on the same data and ports after [`stop`](Self::stop).
    pub fn restart(&self) {
        let out = Command::new(script())
            .arg("restart")
            .arg(self.dir.path())
            .output()
            .expect("run scripts/seaweedfs.sh restart");
        assert!(
            out.status.success(),
            "scripts/seaweedfs.sh restart failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// The versions of `key` in `bucket`, newest first (ListObjectVersions), delete markers excluded.
pub async fn object_versions(config: &S3Config, bucket: &str, key: &str) -> Vec<String> {
    let client = Client::new(config).expect("S3 client");
    let response = client
        .send(
            http::Method::GET,
            bucket,
            &format!("versions=&prefix={key}"),
            &[],
            Bytes::new(),
        )
        .await
        .expect("list object versions");
    let (status, body) = status_and_text(response)
        .await
        .expect("list object versions");
    assert!(
        status.is_success(),
        "list object versions: {status}: {body}"
    );
    body.split("<Version>")
        .skip(1)
        .filter_map(|v| {
            let start = v.find("<VersionId>")? + "<VersionId>".len();
            let end = v[start..].find("</VersionId>")?;
            let key_start = v.find("<Key>")? + "<Key>".len();
            let key_end = v[key_start..].find("</Key>")?;
            (&v[key_start..key_start + key_end] == key).then(|| v[start..start + end].to_owned())
        })
        .collect()
}

/// `DELETE` of one version of `key`: what Object Lock must refuse. Returns the status.
pub async fn delete_version(
    config: &S3Config,
    bucket: &str,
    key: &str,
    version: &str,
) -> http::StatusCode {
    let client = Client::new(config).expect("S3 client");
    client
        .send(
            http::Method::DELETE,
            &format!("{bucket}/{key}"),
            &format!("versionId={version}"),
            &[],
            Bytes::new(),
        )
        .await
        .expect("delete a version")
        .status()
}

/// The body of one version of `key`.
pub async fn get_version(config: &S3Config, bucket: &str, key: &str, version: &str) -> Vec<u8> {
    let client = Client::new(config).expect("S3 client");
    let response = client
        .send(
            http::Method::GET,
            &format!("{bucket}/{key}"),
            &format!("versionId={version}"),
            &[],
            Bytes::new(),
        )
        .await
        .expect("get a version");
    let status = response.status();
    assert!(
        status.is_success(),
        "get version {version} of {key}: {status}"
    );
    response.bytes().await.expect("a version's body").to_vec()
}

/// Every object in `bucket` (the current version of each key) with its bytes: what a reader of the bucket can see.
pub async fn all_objects(config: &S3Config, bucket: &str) -> Vec<(String, Vec<u8>)> {
    use futures_util::TryStreamExt;
    use object_store::ObjectStoreExt;
    let store = crate::s3::object_store(config, bucket).expect("object store");
    let listed: Vec<object_store::ObjectMeta> = store
        .list(None)
        .try_collect()
        .await
        .expect("list the bucket");
    let mut objects = Vec::with_capacity(listed.len());
    for meta in listed {
        let body = store
            .get(&meta.location)
            .await
            .expect("get an object")
            .bytes()
            .await
            .expect("an object's body");
        objects.push((meta.location.to_string(), body.to_vec()));
    }
    objects
}
