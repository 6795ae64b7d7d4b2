//! Records every node serving one store reads alike, besides histories: console sessions (so
//! that a sign-in works on every node and outlives a restart) and the deployed definition set
//! (so that every node runs the set `sopflow deploy` put in force, not whatever files sit on
//! its own disk).

use crate::catalog::{Parameters, SourceFile, Sources};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// A console session as stored. Its key is the SHA-256 of the session cookie, never the
/// cookie: whoever reads the store (a backup, a replica) cannot sign in with what they read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    /// The id of the user signed in (their roles are read from the users file each request).
    pub user: String,
    /// The token the session's forms carry. Useless without the cookie, which is not stored.
    pub csrf: String,
    /// When the session was opened.
    pub created: DateTime<Utc>,
    /// When it was last used (to the minute or so: a session is not rewritten on every
    /// request); a session unused for longer than the idle limit has ended.
    pub last_used: DateTime<Utc>,
}

/// What a deployed file is to the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A workflow (`.yaml`).
    Workflow,
    /// A rules file (`.rhai`).
    Rules,
    /// A business calendar.
    Calendar,
    /// The organisation's role list.
    Roles,
}

/// One file of a deployed set, with its text as it was validated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeployedFile {
    /// What it is.
    pub kind: FileKind,
    /// Where it was read from when deployed, for findings and messages.
    pub path: String,
    /// Its text.
    pub text: String,
}

/// A definition set `sopflow deploy` put in force: every file it was built from (so that a
/// node builds exactly the catalog that was validated, role titles and calendars included),
/// the version of each workflow, and who deployed it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedSet {
    /// The set's id: [`DeployedSet::id_of`] its files and parameters.
    pub id: String,
    /// Each workflow's version hash, by workflow id, in id order.
    pub versions: Vec<(String, String)>,
    /// The files, in kind and path order.
    pub files: Vec<DeployedFile>,
    /// Parameter values set over the workflows' defaults.
    #[serde(default, skip_serializing_if = "Parameters::is_empty")]
    pub parameters: Parameters,
    /// Who deployed it (as they gave it, or their login name).
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl DeployedSet {
    /// The id of a set of files and parameters: SHA-256 over their JSON, files sorted, so that
    /// the same files deployed twice are the same set.
    pub fn id_of(files: &[DeployedFile], parameters: &Parameters) -> String {
        let mut files = files.to_vec();
        files.sort();
        let json = serde_json::json!({ "files": files, "parameters": parameters });
        format!("sha256:{}", hex::encode(Sha256::digest(json.to_string())))
    }

    /// The files of `sources` that were read (a file that could not be read has no text to
    /// deploy; the caller refuses such a set, since its report has an error).
    pub fn files_of(sources: &Sources) -> Vec<DeployedFile> {
        let mut files = Vec::new();
        for (kind, list) in [
            (FileKind::Workflow, &sources.workflows),
            (FileKind::Rules, &sources.rules),
            (FileKind::Calendar, &sources.calendars),
            (FileKind::Roles, &sources.roles),
        ] {
            for file in list {
                if let Ok(text) = &file.text {
                    files.push(DeployedFile {
                        kind,
                        path: crate::diagnostic::display_path(&file.path),
                        text: text.clone(),
                    });
                }
            }
        }
        files.sort();
        files
    }

    /// The sources to build the set's catalog from, as if its files were read from disk.
    pub fn sources(&self) -> Sources {
        let mut sources = Sources::default().with_parameters(self.parameters.clone());
        for file in &self.files {
            let source = SourceFile {
                path: PathBuf::from(&file.path),
                text: Ok(file.text.clone()),
            };
            match file.kind {
                FileKind::Workflow => sources.workflows.push(source),
                FileKind::Rules => sources.rules.push(source),
                FileKind::Calendar => sources.calendars.push(source),
                FileKind::Roles => sources.roles.push(source),
            }
        }
        sources
    }
}
