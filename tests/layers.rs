//! The root package's modules in layers (ARCHITECTURE.md): a module may use the modules of a
//! lower layer, never one of its own layer or above. The core and ingest crates are below
//! everything and the compiler keeps them there; this test keeps the root package's own
//! modules from growing upward dependencies (a sink reaching into the service, the store into
//! the command line).

use std::collections::BTreeSet;
use std::path::Path;

use crate::command::root;

/// Each top-level module of `src/` and its layer; the re-exported core and ingest modules
/// are layer 0.
const LAYERS: [(&str, u8); 16] = [
    ("alert", 0),
    ("detect", 0),
    ("event", 0),
    ("ingest", 0),
    ("least_privilege", 0),
    ("registry", 0),
    ("smart", 0),
    ("baseline", 1),
    ("simulate", 1),
    ("sinks", 1),
    ("eval", 2),
    ("sql", 2),
    ("pipeline", 3),
    ("report", 3),
    ("cli", 4),
    ("main", 5),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The top-level modules a file names through `crate::module`, `crate::{a::x, b}` groups, or
/// the library's own name (`scopewatch::module`). (`super::` paths stay inside a module's own
/// folder, below its top level.)
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["crate::", "scopewatch::"] {
        for (i, _) in text.match_indices(prefix) {
            let rest = &text[i + prefix.len()..];
            match rest.strip_prefix('{') {
                Some(group) => {
                    let group = group.split('}').next().unwrap_or_default();
                    out.extend(
                        group
                            .split(',')
                            .filter_map(|item| leading_name(item.trim())),
                    );
                }
                None => out.extend(leading_name(rest)),
            }
        }
    }
    out
}

fn leading_name(path: &str) -> Option<String> {
    let name: String = path
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self" && name != "super").then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_one_of_its_own_layer_or_above() {
    let src = Path::new(&root("src")).to_path_buf();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "the sources under {}", src.display());
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a component");
        let name = first.as_os_str().to_string_lossy();
        let module = name.trim_end_matches(".rs");
        if module == "lib" {
            continue;
        }
        let Some(own) = layer(module) else {
            violations.push(format!("src/{module}: not in LAYERS (place it in a layer)"));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        for used in used_modules(&text) {
            match layer(&used) {
                _ if used == module => {}
                Some(l) if l < own => {}
                Some(l) => violations.push(format!(
                    "{}: {module} (layer {own}) uses crate::{used} (layer {l})",
                    relative.display()
                )),
                None => violations.push(format!(
                    "{}: crate::{used} is not in LAYERS",
                    relative.display()
                )),
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn the_check_sees_an_upward_use() {
    let found = used_modules(
        "use crate::pipeline::append_file::AppendFile;\nuse crate::{alert::Alert, sql::history};\n\
         use scopewatch::report;",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["alert", "pipeline", "report", "sql"],
        "the layer check reads crate:: paths, groups and the paths that would dodge it"
    );
    let (sinks, pipeline) = (layer("sinks").unwrap(), layer("pipeline").unwrap());
    assert!(sinks < pipeline, "a sink may not use the pipeline");
}
