//! Every task definition in `examples/` parses (as `berth run FILE` reads it) and passes
//! validation, and every `secrets[].valueFrom` in it is a reference berth resolves; the
//! README points users at these files.

use berth_runtime::secrets::reference;
use berth_runtime::taskdef::{parse_task_definition_file, validate};

#[test]
fn example_task_definitions_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let def = parse_task_definition_file(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for c in &def.container_definitions {
            for s in &c.secrets {
                reference::parse(&s.value_from)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
        validate(def).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} examples in {}", dir.display());
}
