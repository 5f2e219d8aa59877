//! Rules of the codebase that enforce themselves: every module says what it is for, no source
//! file grows past 600 lines, SQL lives in `.sql` files, and the docs name exactly the settings
//! the code reads and the routes the router serves.

use lablet_api::routes::endpoints;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The longest a source file may be, its unit tests apart.
const MAX_LINES: usize = 600;
/// The crates' source folders, relative to the workspace root.
const SOURCE_DIRS: [&str; 9] = [
    "domain/src",
    "application/src",
    "projections/src",
    "infrastructure/src",
    "migrations/src",
    "api/src",
    "cml-simulator/src",
    "tests/src",
    "tests/tests",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn rust_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a readable source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = root();
    let mut paths = Vec::new();
    for dir in SOURCE_DIRS {
        walk(&root.join(dir), &mut paths);
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let relative = path.strip_prefix(&root).expect("under the root").display().to_string();
            (relative, text)
        })
        .collect()
}

/// The part of a file before its unit tests.
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |at| &text[..at])
}

#[test]
fn every_module_opens_with_a_doc_paragraph() {
    let undocumented: Vec<String> = rust_files()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| path)
        .collect();
    assert!(
        undocumented.is_empty(),
        "modules without a `//!` paragraph: {undocumented:?}"
    );
}

#[test]
fn no_source_file_is_longer_than_600_lines_without_its_tests() {
    let long: Vec<String> = rust_files()
        .into_iter()
        .filter(|(path, _)| !path.starts_with("tests/"))
        .filter_map(|(path, text)| {
            let lines = without_tests(&text).lines().count();
            (lines > MAX_LINES).then(|| format!("{path}: {lines} lines"))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

/// Whether `line` holds a string literal that starts an SQL statement.
fn holds_sql(line: &str) -> bool {
    const VERBS: [&str; 14] = [
        "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "WITH ", "CREATE ", "ALTER ", "DROP ", "LISTEN ", "NOTIFY ",
        "PRAGMA ", "BEGIN", "COMMIT", "LOCK ",
    ];
    line.split('"')
        .skip(1)
        .step_by(2)
        .any(|literal| VERBS.iter().any(|verb| literal.trim_start().starts_with(verb)))
}

#[test]
fn sql_lives_in_sql_files() {
    let mut offending = BTreeSet::new();
    for (path, text) in rust_files() {
        if path.starts_with("tests/") {
            continue;
        }
        for (n, line) in without_tests(&text).lines().enumerate() {
            if !line.trim_start().starts_with("//") && holds_sql(line) {
                offending.insert(format!("{path}:{}", n + 1));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "SQL written in Rust strings (move it to a .sql file): {offending:?}"
    );
}

/// Every `LABLET_…` name written as a string in `text`.
fn setting_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("LABLET_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if name.len() > "LABLET_".len() && !name.ends_with('_') {
            names.insert(name);
        }
    }
    names
}

#[test]
fn the_settings_table_names_exactly_the_settings_the_code_reads() {
    let docs = std::fs::read_to_string(root().join("docs/configuration.md")).expect("docs/configuration.md");
    let documented: BTreeSet<String> = docs
        .lines()
        .filter(|line| line.starts_with("| `LABLET_"))
        .flat_map(setting_names)
        .collect();
    let mut read = BTreeSet::new();
    for (path, text) in rust_files() {
        let quoted = without_tests(&text)
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|literal| literal.starts_with("LABLET_"))
            .flat_map(setting_names)
            .collect::<BTreeSet<_>>();
        // Tests read only the LABLET_TEST_… settings that point them at servers.
        read.extend(
            quoted
                .into_iter()
                .filter(|name| !path.starts_with("tests/") || name.starts_with("LABLET_TEST_")),
        );
    }
    assert!(
        read.len() > 30 && documented.len() > 30,
        "read {read:?}, documented {documented:?}"
    );
    let undocumented: Vec<&String> = read.difference(&documented).collect();
    let unread: Vec<&String> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty(),
        "settings read but not in docs/configuration.md: {undocumented:?}"
    );
    assert!(
        unread.is_empty(),
        "settings in docs/configuration.md that nothing reads: {unread:?}"
    );
}

/// `METHOD /path` with every `{parameter}` as `{}`, queries cut, under `/api/v1` unless it is
/// a health or metrics route.
fn route_key(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let path = if path.starts_with("/api/") || path.starts_with("/health") || path == "/metrics" {
        path.to_owned()
    } else {
        format!("/api/v1{path}")
    };
    let mut normal = String::new();
    let mut in_parameter = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_parameter = true;
                normal.push_str("{}");
            }
            '}' => in_parameter = false,
            _ if in_parameter => {}
            _ => normal.push(c),
        }
    }
    format!("{method} {normal}")
}

#[test]
fn the_api_guide_names_exactly_the_routes_the_router_serves() {
    let docs = std::fs::read_to_string(root().join("docs/api.md")).expect("docs/api.md");
    let mut documented = BTreeSet::new();
    for piece in docs.split('`').skip(1).step_by(2) {
        if let Some((method, path)) = piece.split_once(' ') {
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method)
                && path.starts_with('/')
                && !path.contains(' ')
            {
                documented.insert(route_key(method, path));
            }
        }
    }
    let served: BTreeSet<String> = endpoints(false)
        .iter()
        .map(|endpoint| route_key(endpoint.method.as_str(), endpoint.path))
        .collect();
    let undocumented: Vec<&String> = served.difference(&documented).collect();
    let unserved: Vec<&String> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/api.md: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "routes in docs/api.md that the router does not serve: {unserved:?}"
    );
}
