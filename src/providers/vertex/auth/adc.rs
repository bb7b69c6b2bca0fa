//! Application Default Credentials in Google's order (google-auth's `default()`):
//! `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's well-known file, then the metadata server.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{GoogleAuth, metadata};
use crate::types::Error;

/// The variable naming a credential file.
const CREDENTIALS_VAR: &str = "GOOGLE_APPLICATION_CREDENTIALS";

/// gcloud's ADC file name, in its configuration directory.
const WELL_KNOWN_FILE: &str = "application_default_credentials.json";

/// The credentials Application Default Credentials find with `env` as the environment.
pub(crate) fn find(env: &dyn Fn(&str) -> Option<OsString>) -> Result<GoogleAuth, Error> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(path) = set(CREDENTIALS_VAR) {
        return GoogleAuth::service_account_file(PathBuf::from(path));
    }
    if let Some(path) = well_known_file(&set)
        && path.is_file()
    {
        return GoogleAuth::service_account_file(path);
    }
    let host = set("GCE_METADATA_HOST")
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|| metadata::DEFAULT_HOST.to_owned());
    Ok(GoogleAuth::metadata_server_at(&host))
}

/// gcloud's ADC file: in `$CLOUDSDK_CONFIG`, else `%APPDATA%\gcloud` on Windows,
/// `~/.config/gcloud` elsewhere.
fn well_known_file(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let dir = match env("CLOUDSDK_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None if cfg!(windows) => PathBuf::from(env("APPDATA")?).join("gcloud"),
        None => PathBuf::from(env("HOME")?).join(".config").join("gcloud"),
    };
    Some(dir.join(WELL_KNOWN_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ErrorKind;
    use std::collections::HashMap;

    const KEY_FILE: &str = "tests/fixtures/vertex/auth/google_auth_test_service_account.json";

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn shown(auth: &GoogleAuth) -> String {
        format!("{auth:?}")
    }

    #[test]
    fn the_variable_comes_first() {
        let dir = tempdir("adc-first");
        std::fs::write(dir.join(WELL_KNOWN_FILE), USER_FILE).expect("write");
        let env = env_of(&[
            (CREDENTIALS_VAR, KEY_FILE),
            ("CLOUDSDK_CONFIG", dir.to_str().expect("utf-8")),
        ]);
        let auth = find(&env).expect("found");
        assert!(
            shown(&auth).contains("service-account@example.com"),
            "{auth:?}"
        );
        // A variable naming a missing file is an error naming it, not a silent fallback.
        let env = env_of(&[(CREDENTIALS_VAR, "/nonexistent/key.json")]);
        let e = find(&env).expect_err("missing file");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("/nonexistent/key.json"), "{e}");
    }

    const USER_FILE: &str = r#"{"type":"authorized_user","client_id":"cid.apps.googleusercontent.com","client_secret":"d-SECRET","refresh_token":"1//REFRESH-SECRET"}"#;

    #[test]
    fn then_gclouds_file_then_the_metadata_server() {
        let dir = tempdir("adc-gcloud");
        std::fs::write(dir.join(WELL_KNOWN_FILE), USER_FILE).expect("write");
        let env = env_of(&[("CLOUDSDK_CONFIG", dir.to_str().expect("utf-8"))]);
        let auth = find(&env).expect("found");
        let s = shown(&auth);
        assert!(
            s.contains("authorized_user") && s.contains("cid.apps"),
            "{s}"
        );
        assert!(!s.contains("SECRET"), "{s}");

        let home = tempdir("adc-home");
        let gcloud = home.join(".config").join("gcloud");
        std::fs::create_dir_all(&gcloud).expect("dirs");
        std::fs::write(gcloud.join(WELL_KNOWN_FILE), USER_FILE).expect("write");
        let env = env_of(&[("HOME", home.to_str().expect("utf-8"))]);
        assert!(shown(&find(&env).expect("found")).contains("authorized_user"));

        let empty = tempdir("adc-none");
        let env = env_of(&[
            ("CLOUDSDK_CONFIG", empty.to_str().expect("utf-8")),
            ("GCE_METADATA_HOST", "127.0.0.1:8181"),
        ]);
        assert!(shown(&find(&env).expect("found")).contains("http://127.0.0.1:8181"));
        let env = env_of(&[("CLOUDSDK_CONFIG", empty.to_str().expect("utf-8"))]);
        assert!(shown(&find(&env).expect("found")).contains("metadata.google.internal"));
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "polyrelay-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
