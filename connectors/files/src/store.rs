//! Object stores for table locations: the local file system and S3 buckets configured one
//! by one (endpoint, region, credentials, path style), falling back to the standard AWS
//! environment variables.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::object_store::ObjectStore;
use datafusion::object_store::aws::AmazonS3Builder;
use serde::Deserialize;
use url::Url;

use crate::{FilesError, Result};

/// S3 settings: per bucket, with defaults for buckets not listed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Applies to every bucket without its own entry.
    #[serde(default)]
    pub default: BucketConfig,
    #[serde(default)]
    pub buckets: BTreeMap<String, BucketConfig>,
}

/// How to reach one bucket. Unset fields come from the AWS environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: Option<bool>,
}

impl fmt::Debug for BucketConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials are never printed, not even in debug logs.
        f.debug_struct("BucketConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<set>"),
            )
            .field("path_style", &self.path_style)
            .finish()
    }
}

impl BucketConfig {
    fn merged_over(&self, base: &BucketConfig) -> BucketConfig {
        BucketConfig {
            endpoint: self.endpoint.clone().or_else(|| base.endpoint.clone()),
            region: self.region.clone().or_else(|| base.region.clone()),
            access_key_id: self
                .access_key_id
                .clone()
                .or_else(|| base.access_key_id.clone()),
            secret_access_key: self
                .secret_access_key
                .clone()
                .or_else(|| base.secret_access_key.clone()),
            session_token: self
                .session_token
                .clone()
                .or_else(|| base.session_token.clone()),
            path_style: self.path_style.or(base.path_style),
        }
    }

    fn build(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &self.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &self.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &self.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &self.session_token {
            builder = builder.with_token(token);
        }
        builder = builder.with_virtual_hosted_style_request(!self.path_style.unwrap_or(true));
        let store = builder.build().map_err(|e| FilesError::S3Config {
            bucket: bucket.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Arc::new(store))
    }
}

/// DataFusion's object store registry for Quarry: `file://` always, `s3://bucket` built on
/// first use from [`S3Config`] and kept.
#[derive(Debug)]
pub struct QuarryObjectStoreRegistry {
    base: DefaultObjectStoreRegistry,
    s3: S3Config,
    buckets: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl QuarryObjectStoreRegistry {
    pub fn new(s3: S3Config) -> Self {
        Self {
            base: DefaultObjectStoreRegistry::new(),
            s3,
            buckets: Mutex::default(),
        }
    }
}

impl ObjectStoreRegistry for QuarryObjectStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.base.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        if url.scheme() != "s3" {
            return self.base.get_store(url);
        }
        if let Ok(store) = self.base.get_store(url) {
            return Ok(store);
        }
        let bucket = url.host_str().unwrap_or_default().to_string();
        let mut buckets = self.buckets.lock().expect("bucket cache lock");
        if let Some(store) = buckets.get(&bucket) {
            return Ok(Arc::clone(store));
        }
        let config = self
            .s3
            .buckets
            .get(&bucket)
            .map(|b| b.merged_over(&self.s3.default))
            .unwrap_or_else(|| self.s3.default.clone());
        let store = config.build(&bucket).map_err(DataFusionError::from)?;
        buckets.insert(bucket, Arc::clone(&store));
        Ok(store)
    }
}

/// Canonical form of a user-given location: a URL ending in `/`.
/// Absolute local paths become `file://` URLs; relative paths are refused.
pub fn normalize_location(text: &str) -> Result<String> {
    let invalid = |reason: &str| FilesError::InvalidLocation {
        location: text.to_string(),
        reason: reason.to_string(),
    };
    let mut url = if text.starts_with('/') {
        Url::from_directory_path(text).map_err(|_| invalid("not a valid absolute path"))?
    } else {
        let url = Url::parse(text).map_err(|_| {
            invalid("use an absolute path, a file:// URL or an s3://bucket/prefix URL")
        })?;
        match url.scheme() {
            "file" => {}
            "s3" if url.host_str().is_some_and(|h| !h.is_empty()) => {}
            "s3" => return Err(invalid("an s3:// location needs a bucket name")),
            other => return Err(invalid(&format!("unsupported scheme \"{other}\""))),
        }
        url
    };
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_normalize_to_directory_urls() {
        assert_eq!(normalize_location("/data/t").unwrap(), "file:///data/t/");
        assert_eq!(
            normalize_location("file:///data/t/").unwrap(),
            "file:///data/t/"
        );
        assert_eq!(
            normalize_location("s3://bucket/a/b").unwrap(),
            "s3://bucket/a/b/"
        );
        assert!(
            normalize_location("relative/dir")
                .unwrap_err()
                .to_string()
                .contains("absolute path")
        );
        assert!(
            normalize_location("hdfs://nn/x")
                .unwrap_err()
                .to_string()
                .contains("hdfs")
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config = BucketConfig {
            secret_access_key: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
