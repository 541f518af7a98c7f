//! Where a store lives: a local directory (sled) or a URL of an object
//! store, as `state.checkpoints.dir`, `state.savepoints.dir` and
//! `execution.savepoint.path` take them (Flink's keys, which take URLs).
//!
//! Credentials and endpoints are never part of a location: they come from
//! the environment, as `object_store`'s builders read it (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`; docs/checkpoints.md lists them).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::ObjectStoreScheme;
use object_store::path::Path as ObjectPath;
use url::Url;

use crate::error::{EngineError, Result};

/// A store's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on this machine, holding a sled database.
    Local(PathBuf),
    /// An object store: `s3://`, `gs://`, `az://` (and Azure's other forms)
    /// or `file:///`.
    Url(Url),
}

impl Location {
    /// A path or a URL, as a setting gives it: a value with a scheme
    /// (`scheme://` or `file:`) is a URL and must name a store Weir can
    /// write to; anything else is a local path.
    pub fn parse(value: &str) -> std::result::Result<Self, String> {
        if value.contains("://") || value.starts_with("file:") {
            parse_url(value).map(Self::Url)
        } else {
            Ok(Self::Local(PathBuf::from(value)))
        }
    }

    /// The location of a path handed through an API that takes paths (a
    /// savepoint's target): a path whose text is a URL is that URL.
    pub fn from_path(path: &Path) -> Result<Self> {
        match path.to_str() {
            Some(text) => Self::parse(text).map_err(EngineError::State),
            None => Ok(Self::Local(path.to_path_buf())),
        }
    }

    /// The location as a path, for APIs that take one (see
    /// [`Self::from_path`]).
    pub fn to_path_buf(&self) -> PathBuf {
        match self {
            Self::Local(p) => p.clone(),
            Self::Url(u) => PathBuf::from(u.as_str()),
        }
    }

    /// The location `name` below this one: a job's directory under a
    /// checkpoint directory, a savepoint under the savepoint directory.
    pub fn join(&self, name: &str) -> Self {
        match self {
            Self::Local(p) => Self::Local(p.join(name)),
            Self::Url(u) => {
                let mut u = u.clone();
                let path = format!("{}/{name}", u.path().trim_end_matches('/'));
                u.set_path(&path);
                Self::Url(u)
            }
        }
    }

    /// Whether the location is on object storage.
    pub fn is_url(&self) -> bool {
        matches!(self, Self::Url(_))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::Url(u) => write!(f, "{u}"),
        }
    }
}

/// Checks `value` is a URL of a store Weir writes checkpoints to.
pub fn parse_url(value: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{} ({e})", unsupported(value)))?;
    let (scheme, _) = ObjectStoreScheme::parse(&url).map_err(|_| unsupported(value))?;
    match scheme {
        ObjectStoreScheme::Local if url.path().len() <= 1 => {
            Err(format!("'{value}' names the filesystem's root: give a directory, file:///abs/path"))
        }
        ObjectStoreScheme::Local
        | ObjectStoreScheme::AmazonS3
        | ObjectStoreScheme::GoogleCloudStorage
        | ObjectStoreScheme::MicrosoftAzure => Ok(url),
        _ => Err(unsupported(value)),
    }
}

fn unsupported(value: &str) -> String {
    format!(
        "'{value}' is not a location Weir can store state in: expected a URL, s3://bucket/path, \
         gs://bucket/path, az://container/path (or abfs[s]://, azure://, \
         https://ACCOUNT.blob.core.windows.net/...) or file:///absolute/path (a savepoint also takes a local path)"
    )
}

/// The object store of `url` and the path within it, configured from the
/// environment.
pub(super) fn object_store(url: &Url) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let refused = |e: object_store::Error| EngineError::State(format!("cannot use {url} for state: {e}"));
    let (scheme, path) = ObjectStoreScheme::parse(url).map_err(|_| EngineError::State(unsupported(url.as_str())))?;
    let path = ObjectPath::from_url_path(path).map_err(|e| refused(e.into()))?;
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        ObjectStoreScheme::AmazonS3 => {
            Arc::new(object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str()).build().map_err(refused)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url.as_str()).build().map_err(refused)?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str()).build().map_err(refused)?,
        ),
        _ => return Err(EngineError::State(unsupported(url.as_str()))),
    };
    Ok((store, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_object_stores_and_paths_parse_and_others_are_refused() {
        for ok in ["s3://b/ckpt", "gs://b/p", "az://c/p", "abfss://c@a.dfs.core.windows.net/p", "file:///tmp/x"] {
            assert!(matches!(Location::parse(ok), Ok(Location::Url(_))), "{ok}");
        }
        assert_eq!(Location::parse("./state/sp").unwrap(), Location::Local(PathBuf::from("./state/sp")));
        for bad in ["hdfs://nn/ckpt", "s3://", "http://example.com/x", "memory:///x", "s3:// b/x"] {
            let e = Location::parse(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}' is not a location Weir can store state in")), "{bad}: {e}");
        }
        let e = Location::parse("file:///").unwrap_err();
        assert!(e.contains("names the filesystem's root"), "{e}");
    }

    /// A URL passes through an API taking paths unchanged, and joins below
    /// its path.
    #[test]
    fn a_url_survives_a_path_and_joins() {
        let sp = Location::parse("s3://bucket/savepoints/").unwrap().join("job-1");
        assert_eq!(sp.to_string(), "s3://bucket/savepoints/job-1");
        assert_eq!(Location::from_path(&sp.to_path_buf()).unwrap(), sp);
        let local = Location::parse("/tmp/sp").unwrap().join("job-1");
        assert_eq!(Location::from_path(&local.to_path_buf()).unwrap(), local);
    }
}
