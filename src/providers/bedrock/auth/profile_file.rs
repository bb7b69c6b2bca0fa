//! The AWS shared files: `~/.aws/credentials` (`[name]` sections) and `~/.aws/config`
//! (`[profile name]` sections, `[default]`, and `[sso-session name]` sections that SSO
//! profiles refer to), read once when the auth is built.
//!
//! The format is INI-like: `[section]` lines, `name = value` properties, `#` and `;` comment
//! lines, and indented lines continuing a property (sub-properties such as `s3 =` blocks,
//! ignored here). Anything else is an error naming the file and line — never the line's
//! text, which may hold a secret.

use std::collections::HashMap;
use std::path::Path;

use crate::types::{Error, ErrorKind};

/// Which of the two files: they name their sections differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `~/.aws/credentials`: `[name]`.
    Credentials,
    /// `~/.aws/config`: `[profile name]`, and `[default]` for the default profile.
    Config,
}

/// One profile's properties (names lower-cased), as read from one file.
pub(crate) type Properties = HashMap<String, String>;

/// The profiles of one file, by name, and the config file's `[sso-session name]` sections.
#[derive(Debug, Default)]
pub(crate) struct ProfileFile {
    profiles: HashMap<String, Properties>,
    sso_sessions: HashMap<String, Properties>,
}

impl ProfileFile {
    /// Reads and parses `path`; `Ok(None)` when there is no such file.
    pub(crate) fn read(path: &Path, kind: FileKind) -> Result<Option<ProfileFile>, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => parse(&text, kind)
                .map(Some)
                .map_err(|(line, what)| config_error(path, Some(line), &what)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(config_error(path, None, &format!("cannot be read: {e}"))),
        }
    }

    /// The properties of profile `name`, if the file has it.
    pub(crate) fn profile(&self, name: &str) -> Option<&Properties> {
        self.profiles.get(name)
    }

    /// The properties of `[sso-session name]` (config file only), if the file has it.
    pub(crate) fn sso_session(&self, name: &str) -> Option<&Properties> {
        self.sso_sessions.get(name)
    }
}

/// What a section header names.
#[derive(Clone, PartialEq, Eq)]
enum Section {
    Profile(String),
    SsoSession(String),
    /// A section this file kind does not read (`[services y]`, `[plugins]`).
    Other,
}

fn config_error(path: &Path, line: Option<usize>, what: &str) -> Error {
    let at = match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    Error::new(ErrorKind::Config, format!("AWS shared file {at}: {what}"))
}

/// Parses a file's text; an error is the 1-based line number and what is wrong there.
pub(crate) fn parse(text: &str, kind: FileKind) -> Result<ProfileFile, (usize, String)> {
    let mut file = ProfileFile::default();
    // The section being read: `None` before the first one.
    let mut current: Option<Section> = None;
    let mut has_property = false;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            let name = section_name(trimmed).ok_or_else(|| {
                (
                    number,
                    "a section header must be `[name]` with a closing `]` and nothing after it but a comment".to_owned(),
                )
            })?;
            let section = section_of(name, kind);
            match &section {
                Section::Profile(profile) => {
                    file.profiles.entry(profile.clone()).or_default();
                }
                Section::SsoSession(session) => {
                    file.sso_sessions.entry(session.clone()).or_default();
                }
                Section::Other => {}
            }
            current = Some(section);
            has_property = false;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation line: part of the property above (sub-properties).
            if !has_property {
                return Err((
                    number,
                    "an indented line continues a property, but no property comes before it"
                        .to_owned(),
                ));
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err((number, "expected `name = value`".to_owned()));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err((number, "a property has no name before `=`".to_owned()));
        }
        let Some(section) = &current else {
            return Err((
                number,
                "a property comes before any `[section]` header".to_owned(),
            ));
        };
        has_property = true;
        let props = match section {
            Section::Profile(profile) => file.profiles.get_mut(profile),
            Section::SsoSession(session) => file.sso_sessions.get_mut(session),
            Section::Other => None,
        };
        if let Some(props) = props {
            props.insert(key.to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    Ok(file)
}

/// The name inside `[ … ]`, trimmed; `None` for a malformed header.
fn section_name(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let close = inner.find(']')?;
    let rest = inner.get(close + 1..)?.trim_start();
    if !(rest.is_empty() || rest.starts_with('#') || rest.starts_with(';')) {
        return None;
    }
    let name = inner.get(..close)?.trim();
    (!name.is_empty()).then_some(name)
}

/// What a section header names in this kind of file.
fn section_of(section: &str, kind: FileKind) -> Section {
    match kind {
        FileKind::Credentials => Section::Profile(section.to_owned()),
        FileKind::Config => {
            if section == "default" {
                return Section::Profile("default".to_owned());
            }
            if let Some(name) = named(section, "profile") {
                return Section::Profile(name);
            }
            match named(section, "sso-session") {
                Some(name) => Section::SsoSession(name),
                None => Section::Other,
            }
        }
    }
}

/// The name after `prefix` and blanks in a header such as `profile dev`; `None` for another
/// prefix or no name.
fn named(section: &str, prefix: &str) -> Option<String> {
    let rest = section.strip_prefix(prefix)?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let name = rest.trim();
    (!name.is_empty()).then(|| name.to_owned())
}
