//! Malformed input gets a diagnostic, never a panic or a hang: binary garbage, oversized files,
//! non-UTF-8 file names, runaway scripts, and arbitrary damage to a real workflow.

use proptest::prelude::*;
use sopflow::catalog::{self, Sources};
use sopflow::diagnostic::Code;
use sopflow::script::Sandbox;
use std::path::{Path, PathBuf};

fn load_dir(dir: &Path) -> sopflow::LoadReport {
    catalog::load(&[dir.to_path_buf()], &Sandbox::default()).expect("folder loads")
}

fn hot_work_permit() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/hot_work_permit.yaml"),
    )
    .expect("shipped workflow")
}

fn hot_work_rules() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/hot_work.rhai"))
        .expect("shipped rules")
}

#[test]
fn binary_garbage_is_an_unreadable_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("garbage.yaml"), &garbage).expect("write");
    let report = load_dir(dir.path());
    assert_eq!(report.diagnostics.len(), 1, "{:#?}", report.diagnostics);
    assert_eq!(report.diagnostics[0].code, Code::Io);
}

#[test]
fn control_characters_are_a_syntax_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("noise.yaml"),
        "id: \u{1}\u{2}\u{7f}\n\u{0}\u{3}: [",
    )
    .expect("write");
    let report = load_dir(dir.path());
    assert!(report.has_errors());
    assert!(report.diagnostics.iter().all(|d| d.span.line >= 1));
}

#[test]
fn a_50_megabyte_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::create(dir.path().join("huge.yaml")).expect("create");
    file.set_len(50 * 1024 * 1024).expect("sparse 50 MB file");
    let report = load_dir(dir.path());
    assert_eq!(report.diagnostics.len(), 1);
    assert_eq!(report.diagnostics[0].code, Code::ResourceLimit);
    assert!(
        report.diagnostics[0]
            .message
            .to_string()
            .contains("50.0 MiB"),
        "{}",
        report.diagnostics[0].message
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_are_loaded_and_named() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let name = std::ffi::OsStr::from_bytes(b"\xff\xfe-permit.yaml");
    std::fs::write(
        dir.path().join(name),
        hot_work_permit().replace("to: cs_review,", "to: cs_reveiw,"),
    )
    .expect("write");
    std::fs::write(dir.path().join("hot_work.rhai"), hot_work_rules()).expect("write");
    let report = load_dir(dir.path());
    let d = report
        .diagnostics
        .iter()
        .find(|d| d.code == Code::UnknownState)
        .expect("E101");
    assert!(
        d.to_string().contains("\u{fffd}\u{fffd}-permit.yaml"),
        "{d}"
    );
    assert!(
        d.to_json(sopflow::i18n::Lang::En)["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("-permit.yaml"))
    );
}

#[test]
fn an_endless_loop_in_a_rules_file_never_runs_at_load_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("hot_work_permit.yaml"), hot_work_permit()).expect("write");
    std::fs::write(
        dir.path().join("hot_work.rhai"),
        format!("{}\nloop {{ }}\n", hot_work_rules()),
    )
    .expect("write");
    let report = load_dir(dir.path());
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.code == Code::RuleTopLevel)
    );
    std::fs::write(
        dir.path().join("hot_work.rhai"),
        format!("{}\nwhile true {{ }}", hot_work_rules()),
    )
    .expect("write");
    assert!(
        load_dir(dir.path())
            .diagnostics
            .iter()
            .any(|d| d.code == Code::RuleTopLevel)
    );
}

#[test]
fn a_workflow_with_errors_is_not_put_into_service() {
    let ok = catalog::build(
        Sources::from_texts(
            vec![(PathBuf::from("w.yaml"), hot_work_permit())],
            vec![(PathBuf::from("hot_work.rhai"), hot_work_rules())],
        ),
        &Sandbox::default(),
    );
    let definition = ok.catalog.get("hot_work_permit").expect("valid definition");
    assert_eq!(definition.hash.len(), 64);
    assert!(
        definition
            .scripts
            .contains_key("hot_work::documents_complete")
    );
    assert_eq!(definition.rules.keys().collect::<Vec<_>>(), ["hot_work"]);

    let broken = catalog::build(
        Sources::from_texts(
            vec![(
                PathBuf::from("w.yaml"),
                hot_work_permit().replace("roles: [admin_dept]", "roles: [admin]"),
            )],
            vec![(PathBuf::from("hot_work.rhai"), hot_work_rules())],
        ),
        &Sandbox::default(),
    );
    assert!(broken.catalog.get("hot_work_permit").is_none());
    assert!(
        broken.workflow("hot_work_permit").is_some(),
        "still drawable"
    );
}

#[test]
fn the_version_hash_covers_the_rules_it_uses() {
    let build = |rules: String| {
        catalog::build(
            Sources::from_texts(
                vec![(PathBuf::from("w.yaml"), hot_work_permit())],
                vec![(PathBuf::from("hot_work.rhai"), rules)],
            ),
            &Sandbox::default(),
        )
        .catalog
        .get("hot_work_permit")
        .map(|d| d.hash.clone())
    };
    let before = build(hot_work_rules()).expect("valid");
    assert!(hot_work_rules().contains("payload.applicant_seal != true"));
    let after = build(
        hot_work_rules().replace("payload.applicant_seal != true", "!payload.applicant_seal"),
    )
    .expect("valid");
    assert_ne!(before, after);
    assert_eq!(
        before,
        build(hot_work_rules()).expect("valid"),
        "the hash is stable"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any text at all: a diagnostic or a workflow, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let report = catalog::build(
            Sources::from_texts(vec![(PathBuf::from("any.yaml"), text)], vec![]),
            &Sandbox::default(),
        );
        for d in &report.diagnostics {
            prop_assert!(d.span.line >= 1 && !d.hint.to_string().is_empty());
        }
    }

    /// A real workflow with a slice cut out or a piece pasted in: never a panic, and every
    /// finding points inside the file.
    #[test]
    fn damaged_workflows_never_panic(cut in 0usize..4000, len in 0usize..60, paste in "[ :\\-\\[\\]{}#&*!|>'\"a-z\\n\\t]{0,12}") {
        let original = hot_work_permit();
        let chars: Vec<char> = original.chars().collect();
        let start = cut.min(chars.len());
        let end = (start + len).min(chars.len());
        let damaged: String = chars[..start].iter().chain(paste.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect();
        let lines = damaged.lines().count() as u32 + 1;
        let report = catalog::build(
            Sources::from_texts(
                vec![(PathBuf::from("hot_work_permit.yaml"), damaged)],
                vec![(PathBuf::from("hot_work.rhai"), hot_work_rules())],
            ),
            &Sandbox::default(),
        );
        for d in report.diagnostics.iter().filter(|d| d.file.extension().is_some_and(|e| e == "yaml")) {
            prop_assert!(d.span.line >= 1 && d.span.line <= lines, "{d}");
        }
    }
}
