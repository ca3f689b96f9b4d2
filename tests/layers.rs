//! The layers (ARCHITECTURE.md). Between crates the compiler keeps them: core, then ingest,
//! then store, then runtime, then the `scopewatch` package, each naming only the crates below
//! it in its Cargo.toml — `the_crates_depend_only_downward` reads those manifests and
//! `cargo tree` for the I/O stack the core must never link. Inside a crate, a module may use
//! the modules of a lower layer, never one of its own layer or above; this test keeps a crate's
//! modules from growing upward dependencies (a sink reaching into a driver, the baseline tables
//! into SQL, a report into the command line).

use std::collections::BTreeSet;
use std::path::Path;

use crate::command::root;

/// Layer 0 of every crate: the lower crates' modules it names as `crate::module`.
const LOWER: [&str; 11] = [
    "alert",
    "baseline",
    "detect",
    "event",
    "ingest",
    "least_privilege",
    "pipeline",
    "registry",
    "sinks",
    "smart",
    "sql",
];

/// Each crate whose modules are layered: its source folder and its own top-level modules with
/// their layers (the `alert` and `baseline` of the root and store packages add to the core's).
const CRATES: [(&str, &[(&str, u8)]); 3] = [
    (
        "crates/scopewatch-store/src",
        &[("baseline", 1), ("sql", 2)],
    ),
    (
        "crates/scopewatch-runtime/src",
        &[("sinks", 1), ("pipeline", 2)],
    ),
    (
        "src",
        &[
            ("alert", 0),
            ("simulate", 1),
            ("eval", 2),
            ("report", 2),
            ("cli", 3),
            ("main", 4),
        ],
    ),
];

fn layer(own: &[(&str, u8)], module: &str) -> Option<u8> {
    own.iter()
        .find(|(m, _)| *m == module)
        .map(|(_, l)| *l)
        .or_else(|| LOWER.contains(&module).then_some(0))
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
    let mut violations = Vec::new();
    for (dir, own) in CRATES {
        violations.extend(upward_uses(dir, own));
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

fn upward_uses(dir: &str, own: &[(&str, u8)]) -> Vec<String> {
    let src = Path::new(&root(dir)).to_path_buf();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "the sources under {}", src.display());
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative.components().next().expect("a component");
        let name = first.as_os_str().to_string_lossy();
        let module = name.trim_end_matches(".rs");
        if module == "lib" {
            continue;
        }
        let Some(mine) = layer(own, module) else {
            violations.push(format!(
                "{dir}/{module}: not in CRATES (place it in a layer)"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        for used in used_modules(&text) {
            match layer(own, &used) {
                _ if used == module => {}
                Some(l) if l < mine => {}
                Some(l) => violations.push(format!(
                    "{dir}/{}: {module} (layer {mine}) uses crate::{used} (layer {l})",
                    relative.display()
                )),
                None => violations.push(format!(
                    "{dir}/{}: crate::{used} is not in CRATES",
                    relative.display()
                )),
            }
        }
    }
    violations
}

/// The workspace's crates bottom-up, each with the crates and libraries it must not name.
const CRATE_ORDER: [&str; 5] = [
    "scopewatch-core",
    "scopewatch-ingest",
    "scopewatch-store",
    "scopewatch-runtime",
    "scopewatch",
];

/// What the pure core (and the ingest crate beside it) must never link: the I/O stack.
const IO_STACK: [&str; 6] = [
    "datafusion",
    "arrow",
    "parquet",
    "rdkafka",
    "tokio",
    "object_store",
];

fn manifest(krate: &str) -> String {
    let path = match krate {
        "scopewatch" => root("Cargo.toml"),
        other => root(&format!("crates/{other}/Cargo.toml")),
    };
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The crate names under a manifest's `[dependencies]` table.
fn dependencies(manifest: &str) -> Vec<String> {
    let table = manifest
        .split("\n[")
        .find(|t| t.starts_with("dependencies]"))
        .unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split(['.', ' ', '=']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_crates_depend_only_downward() {
    for (i, krate) in CRATE_ORDER.iter().enumerate() {
        let deps = dependencies(&manifest(krate));
        assert!(!deps.is_empty(), "{krate}: no [dependencies] read");
        for higher in &CRATE_ORDER[i..] {
            assert!(!deps.iter().any(|d| d == higher), "{krate} names {higher}");
        }
    }
    for (krate, never) in NEVER_NAMED {
        let deps = dependencies(&manifest(krate));
        let named: Vec<_> = deps
            .iter()
            .filter(|d| never.contains(&d.as_str()))
            .collect();
        assert!(named.is_empty(), "{krate} names {named:?}");
    }
    let runtime = dependencies(&manifest("scopewatch-runtime"));
    assert!(
        runtime.iter().any(|d| d == "rdkafka"),
        "Kafka is the runtime's"
    );
}

/// Libraries a crate's manifest must not name: the I/O stack below the store, Kafka below
/// the runtime, the command line below the binary (the store's `clap` feature only derives
/// value parsing for its result formats).
const NEVER_NAMED: [(&str, &[&str]); 4] = [
    (
        "scopewatch-core",
        &["datafusion", "rdkafka", "tokio", "object_store", "clap"],
    ),
    (
        "scopewatch-ingest",
        &["datafusion", "rdkafka", "tokio", "object_store", "clap"],
    ),
    ("scopewatch-store", &["rdkafka"]),
    ("scopewatch-runtime", &["clap", "datafusion"]),
];

/// `cargo tree` over what the core and ingest crates link, transitively: none of the I/O stack.
#[test]
fn the_core_links_no_io_stack() {
    for krate in ["scopewatch-core", "scopewatch-ingest"] {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                krate,
            ])
            .current_dir(root("."))
            .output()
            .expect("run cargo tree");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(tree.lines().count() > 5, "{krate}: {tree}");
        for line in tree.lines() {
            let name = line.split(' ').next().unwrap_or_default();
            assert!(
                !IO_STACK
                    .iter()
                    .any(|io| name == *io || name.starts_with(&format!("{io}-"))),
                "{krate} links {line}"
            );
        }
    }
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
    let runtime = CRATES[1].1;
    let (sinks, pipeline) = (layer(runtime, "sinks"), layer(runtime, "pipeline"));
    assert!(sinks < pipeline, "a sink may not use the pipeline");
    let store = CRATES[0].1;
    assert!(
        layer(store, "baseline") < layer(store, "sql"),
        "the tables may not use SQL"
    );
}
