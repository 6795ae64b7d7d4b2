//! The organisation's roles: one list of role ids and their titles (`workflows/roles.yaml`),
//! which every workflow and the users file use.
//!
//! Why one list: a role is a group of people in the organisation, not a word of one workflow.
//! When `cs_supervisor` is 客户服务中心主管 in one procedure and 客服部负责人 in another, a clerk
//! and an auditor cannot tell whether the same people are meant. With the list, a workflow
//! names its roles and takes their titles from it (a title written in the workflow must agree),
//! and the server can refuse a users file that grants a role nobody has heard of.
//!
//! The titles are for people; they are not part of a definition's version hash, so renaming a
//! department changes what every page says without moving running instances to new versions.

use super::located::{Entries, FromTitle, TitleOr};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name of the role list, in a folder of workflows.
pub const FILE_NAMES: [&str; 2] = ["roles.yaml", "roles.yml"];

/// Whether `path` names a role list rather than a workflow.
pub fn is_role_list(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| FILE_NAMES.contains(&n))
}

/// The organisation's roles (`workflows/roles.yaml`): every workflow and the users file name
/// their roles from this list, and take the titles from it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sopflow role list")]
pub struct RoleListFile {
    /// Every role of the organisation, each with its title in the manuals' words:
    /// `order_dept: 秩序维护部`. Workflows name these ids under their own `roles:`.
    pub roles: Entries<TitleOr<RoleTitle>>,
}

/// One role of the organisation.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleTitle {
    /// What the people in the manuals call this role, for example `秩序维护部`.
    pub title: String,
    /// Who holds it, in the organisation's words.
    #[serde(default)]
    pub description: Option<String>,
}

impl FromTitle for RoleTitle {
    fn from_title(title: String) -> Self {
        RoleTitle {
            title,
            description: None,
        }
    }
}

/// The organisation's roles, read and checked (`validate::roles::read_list`).
#[derive(Debug, Clone, Default)]
pub struct RoleList {
    /// Where the list was read from, for diagnostics.
    pub file: PathBuf,
    /// Titles by role id.
    pub titles: BTreeMap<String, String>,
}

impl RoleList {
    /// The title of `role`, when the list has it.
    pub fn title(&self, role: &str) -> Option<&str> {
        self.titles.get(role).map(String::as_str)
    }

    /// The list's role ids, for "did you mean" hints.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.titles.keys().map(String::as_str)
    }
}
