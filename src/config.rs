//! The configuration file (`quarry.toml`): today, S3 buckets.
//!
//! ```toml
//! [s3.default]
//! region = "us-east-1"
//!
//! [s3.buckets.lake]
//! endpoint = "http://127.0.0.1:8014"
//! access_key_id = "..."
//! secret_access_key = "..."
//! path_style = true
//! ```

use std::path::Path;

use quarry_files::S3Config;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub s3: S3Config,
}

/// Reads the configuration: the given file (which must exist), else `DATA_DIR/quarry.toml`
/// when present, else defaults.
pub fn load(explicit: Option<&Path>, data_dir: &Path) -> Result<Config, String> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let path = data_dir.join("quarry.toml");
            if !path.exists() {
                return Ok(Config::default());
            }
            path
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read configuration {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("configuration {}: {e}", path.display()))
}
