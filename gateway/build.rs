//! Embeds the web client (`web/`, minus tests, npm files and its Markdown docs) into the
//! binary: generates a table of `(path, bytes, content type)` included at compile time.

use std::fmt::Write as _;
use std::path::Path;

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default();
        if matches!(rel.split('/').next(), Some("tests" | "node_modules" | "e2e"))
            || rel.starts_with("package")
            || rel.starts_with('.')
            || rel.ends_with(".md")
        {
            continue;
        }
        if path.is_dir() {
            walk(&path, root, out);
        } else {
            out.push(rel);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    let mut code = String::from(
        "/// The embedded web client: (path, bytes, content type).\npub static ASSETS: &[(&str, &[u8], &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
        let _ = writeln!(
            code,
            "    ({f:?}, include_bytes!({:?}), {:?}),",
            root.join(f).display().to_string(),
            content_type(f)
        );
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("assets.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
