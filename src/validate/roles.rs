//! The role vocabulary: the shared role list itself, each workflow's roles against it, and,
//! without a list, the same role's titles across workflows.
//!
//! One role id means one group of people with one title everywhere, so the findings here are
//! about agreement, not about one workflow's logic: a role the list lacks (W407), a title
//! that differs (W408), two roles with one title (W409).

use crate::definition::located::Located;
use crate::definition::roles::{RoleList, RoleListFile};
use crate::definition::{Document, Workflow, parse_yaml};
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::i18n::{Text, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROLES: Document = Document {
    noun: || text!("diag-document-role-list"),
    empty_hint: || text!("hint-empty-role-list"),
    type_hint: || text!("hint-type-role-list"),
};

/// Reads and checks the role list. The list keeps the roles that are well formed, so one bad
/// line does not take every title away.
pub fn read_list(file: &Path, text: &str) -> (Option<RoleList>, Vec<Diagnostic>) {
    let parsed: RoleListFile =
        match parse_yaml(file, text, &ROLES, crate::definition::yaml_options()) {
            Ok(parsed) => parsed,
            Err(diagnostic) => return (None, vec![*diagnostic]),
        };
    let mut diagnostics = Vec::new();
    let mut list = RoleList {
        file: file.to_path_buf(),
        titles: BTreeMap::new(),
    };
    let mut by_title: BTreeMap<String, &Located<String>> = BTreeMap::new();
    for (id, role) in parsed.roles.iter() {
        if !super::is_snake_case(id.as_str()) {
            diagnostics.push(Diagnostic::new(
                Code::BadIdentifier,
                file,
                id.span,
                text!("diag-role-id-not-snake-case", role = id.as_str()),
                text!("hint-role-id-not-snake-case"),
            ));
            continue;
        }
        let title = role.title.trim();
        if title.is_empty() {
            diagnostics.push(Diagnostic::new(
                Code::MissingKey,
                file,
                id.span,
                text!("diag-role-without-title", role = id.as_str()),
                text!("hint-role-without-title"),
            ));
            continue;
        }
        if let Some(first) = by_title.get(title) {
            diagnostics.push(Diagnostic::new(
                Code::SharedRoleTitle,
                file,
                id.span,
                text!(
                    "diag-shared-role-title",
                    first = first.as_str(),
                    second = id.as_str(),
                    title = title
                ),
                text!("hint-shared-role-title"),
            ));
        } else {
            by_title.insert(title.to_string(), id);
        }
        list.titles.insert(id.value.clone(), title.to_string());
    }
    (Some(list), diagnostics)
}

/// Checks a workflow's roles against the list, and gives each role without a title of its
/// own the list's title.
pub fn resolve(workflow: &mut Workflow, file: &Path, list: &RoleList) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    for (id, role) in workflow.roles.0.iter_mut() {
        let Some(shared) = list.title(id.as_str()) else {
            diagnostics.push(Diagnostic::new(
                Code::RoleNotInList,
                file,
                id.span,
                text!("diag-role-not-in-list", role = id.as_str()),
                missing_hint(list, id.as_str()),
            ));
            continue;
        };
        let own = role.0.title.trim();
        if own.is_empty() {
            role.0.title = shared.to_string();
        } else if own != shared {
            diagnostics.push(Diagnostic::new(
                Code::RoleTitleDiffers,
                file,
                id.span,
                text!(
                    "diag-role-title-differs",
                    role = id.as_str(),
                    here = own,
                    there = shared,
                    file = list.file.display().to_string()
                ),
                text!("hint-role-title-differs-list"),
            ));
        }
    }
    diagnostics
}

/// Without a list: the same role must carry the same title in every workflow. Each workflow
/// after the first that titles a role differently is flagged.
pub fn agree(workflows: &[(PathBuf, &Workflow)]) -> Vec<Diagnostic> {
    let mut first: BTreeMap<&str, (&str, &Path)> = BTreeMap::new();
    let mut diagnostics = Vec::new();
    for (file, workflow) in workflows {
        for (id, role) in workflow.roles.iter() {
            let title = role.0.title.trim();
            if title.is_empty() {
                continue;
            }
            match first.get(id.as_str()) {
                None => {
                    first.insert(id.as_str(), (title, file));
                }
                Some((seen, where_)) if *seen != title => {
                    diagnostics.push(Diagnostic::new(
                        Code::RoleTitleDiffers,
                        file,
                        id.span,
                        text!(
                            "diag-role-title-differs",
                            role = id.as_str(),
                            here = title,
                            there = *seen,
                            file = where_.display().to_string()
                        ),
                        text!("hint-role-title-differs-workflows"),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    diagnostics
}

/// The hint for a role id the list does not have.
pub fn missing_hint(list: &RoleList, role: &str) -> Text {
    let file = list.file.display().to_string();
    match did_you_mean(role, list.ids()) {
        Some(near) => text!(
            "hint-role-not-in-list-near",
            near = near,
            role = role,
            file = file
        ),
        None => text!("hint-role-not-in-list", role = role, file = file),
    }
}
