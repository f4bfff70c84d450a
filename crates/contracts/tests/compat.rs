//! The compatibility check on fixtures: one compatible evolution, two breaking ones, and the
//! repository's own `schema/` tree.

use std::path::{Path, PathBuf};

use alpes_contracts::compat::{self, Direction};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compat")
        .join(name)
}

#[test]
fn a_new_field_with_a_default_is_compatible_both_ways() {
    let report = compat::check(&fixture("compatible")).unwrap();
    assert_eq!((report.schemas, report.revisions), (1, 1));
    assert!(
        report.incompatibilities.is_empty(),
        "{:?}",
        report.incompatibilities
    );
}

#[test]
fn a_removed_field_without_default_breaks_old_readers_and_names_the_field() {
    let report = compat::check(&fixture("removed-field")).unwrap();
    let [only] = report.incompatibilities.as_slice() else {
        panic!(
            "expected exactly one incompatibility: {:?}",
            report.incompatibilities
        );
    };
    assert_eq!(only.event, "OrderPlaced");
    assert_eq!(only.direction, Direction::Forward);
    assert_eq!(only.field.as_deref(), Some("order_id"));
    let message = only.to_string();
    assert!(
        message.contains("OrderPlaced") && message.contains("order_id"),
        "{message}"
    );
}

#[test]
fn a_changed_type_breaks_both_ways_and_names_the_nested_field() {
    let report = compat::check(&fixture("changed-type")).unwrap();
    let directions: Vec<_> = report
        .incompatibilities
        .iter()
        .map(|i| i.direction)
        .collect();
    assert_eq!(directions, [Direction::Backward, Direction::Forward]);
    for incompatibility in &report.incompatibilities {
        assert_eq!(
            incompatibility.field.as_deref(),
            Some("amount.amount_minor")
        );
    }
}

#[test]
fn the_repository_schemas_are_compatible_with_their_history() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema");
    let report = compat::check(&root).unwrap();
    assert_eq!(report.schemas, alpes_contracts::events::all().len());
    assert!(
        report.incompatibilities.is_empty(),
        "{:?}",
        report.incompatibilities
    );
}
