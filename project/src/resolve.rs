//! The one path resolver: project-relative paths, lexical normalisation, and
//! reading a `.js` file through the project's capability without following
//! any symlink. `createWorker`, `require` and the project loader all use it.

use std::io::Read;

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};

/// The largest `.js` file a project may hold (docs/spec.md section 1).
pub const MAX_JS_FILE: u64 = 16 << 20;

/// Normalises `path` lexically against the directory `base` (both
/// project-relative, `/`-separated, no leading `/`): `.` and empty parts go,
/// `..` pops a part. `None` when the path climbs above the project root or
/// holds a NUL byte or a backslash.
pub fn normalize(base: &str, path: &str) -> Option<String> {
    if [base, path].iter().any(|p| p.contains('\0') || p.contains('\\')) {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    // `base` may come from a guest too: it follows the same rules.
    for part in base.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Whether the normalised path `path` is strictly inside the directory `dir`.
pub fn is_inside(dir: &str, path: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
}

/// The error `require` throws for a module it cannot give (docs/spec.md section 3).
fn not_defined(id: &str, request: &str) -> String {
    format!("module '{id}' is not defined, require args is '{request}'")
}

/// Resolves `require(request)` or `import request` in the file `from`
/// (project-relative with a leading `/`), for code confined to the directory
/// `scope` (the workers directory, or `""` for the whole project). Relative
/// requests (`./`, `../`) start at `from`'s directory, others at the project
/// root; an absolute one is refused. `.js` may be omitted, and a directory
/// means its `index.js`. Returns the file, project-relative with a leading
/// `/`, or the WeChat-style error.
pub fn resolve_module(root: &Dir, scope: &str, from: &str, request: &str) -> Result<String, String> {
    let relative =
        request == "." || request == ".." || request.starts_with("./") || request.starts_with("../");
    let base = if relative {
        from.trim_start_matches('/')
            .rsplit_once('/')
            .map_or("", |(dir, _)| dir)
    } else {
        ""
    };
    let normalized = if request.is_empty() || request.starts_with('/') {
        None
    } else {
        normalize(base, request)
    };
    let Some(path) = normalized else {
        return Err(not_defined(&module_id(base, request), request));
    };
    let candidates = if path.ends_with(".js") {
        vec![path.clone()]
    } else {
        vec![format!("{path}.js"), format!("{path}/index.js")]
    };
    for candidate in &candidates {
        if !scope.is_empty() && !is_inside(scope, candidate) {
            continue;
        }
        match probe(root, candidate) {
            Ok(()) => return Ok(format!("/{candidate}")),
            Err(e) => tracing::debug!("require('{request}') from {from}: {candidate}: {e}"),
        }
    }
    Err(not_defined(&candidates[0], request))
}

/// The name a refused request goes by in its error: the request joined to
/// `base` lexically, keeping the `..` that climb out, with `.js` added.
fn module_id(base: &str, request: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !request.starts_with('/') {
        parts.extend(base.split('/').filter(|p| !p.is_empty()));
    }
    for part in request.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut id = parts.join("/");
    if request.starts_with('/') {
        id.insert(0, '/');
    }
    if !id.is_empty() && !id.ends_with(".js") {
        id.push_str(".js");
    }
    id
}

/// Reads a module that [`resolve_module`] gave, after checking again that
/// `filename` is a normalised `.js` path inside `scope`: the caller is a guest.
pub fn load_module(root: &Dir, scope: &str, filename: &str) -> Result<String, String> {
    let path = filename.strip_prefix('/').unwrap_or("");
    let well_formed = normalize("", path).is_some_and(|n| n == path) && path.ends_with(".js");
    if !well_formed || (!scope.is_empty() && !is_inside(scope, path)) {
        return Err(format!(
            "module '{path}' is not defined, require args is '{filename}'"
        ));
    }
    read_file(root, path).map_err(|e| format!("cannot load module '{path}': {e}"))
}

/// Whether `path` names a regular `.js` file reached without symlinks.
fn probe(root: &Dir, path: &str) -> Result<(), ReadError> {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let dir = open_dir(root, parent)?;
    check_regular(&dir.symlink_metadata(name).map_err(io_error)?)
}

/// Why a file could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Nothing at that path (or a directory part is missing).
    NotFound,
    /// Something is there but it is not a regular file reached without symlinks.
    NotRegular(&'static str),
    /// Larger than [`MAX_JS_FILE`].
    TooLarge,
    /// Not UTF-8 text, or an I/O error.
    Unreadable(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("no such file"),
            ReadError::NotRegular(what) => write!(f, "{what}"),
            ReadError::TooLarge => write!(f, "larger than {} MiB", MAX_JS_FILE >> 20),
            ReadError::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

fn io_error(e: std::io::Error) -> ReadError {
    match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound,
        std::io::ErrorKind::NotADirectory => ReadError::NotFound,
        _ => ReadError::Unreadable(e.to_string()),
    }
}

/// Opens the directory `path` (normalised, project-relative) under `root`,
/// one part at a time, refusing symlinks at every step.
pub fn open_dir(root: &Dir, path: &str) -> Result<Dir, ReadError> {
    let mut dir = root.try_clone().map_err(io_error)?;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let meta = dir.symlink_metadata(part).map_err(io_error)?;
        if meta.file_type().is_symlink() {
            return Err(ReadError::NotRegular("a symbolic link"));
        }
        if !meta.is_dir() {
            return Err(ReadError::NotFound);
        }
        dir = dir.open_dir_nofollow(part).map_err(io_error)?;
    }
    Ok(dir)
}

/// Reads the regular file `path` (normalised, project-relative) under `root`
/// as UTF-8, refusing symlinks anywhere on the way, FIFOs, devices,
/// directories and files over [`MAX_JS_FILE`].
pub fn read_file(root: &Dir, path: &str) -> Result<String, ReadError> {
    let (parent, name) = match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    };
    if name.is_empty() {
        return Err(ReadError::NotFound);
    }
    let dir = open_dir(root, parent)?;
    let meta = dir.symlink_metadata(name).map_err(io_error)?;
    check_regular(&meta)?;
    // No-follow closes the gap between the check and the open; non-blocking
    // keeps a FIFO swapped in meanwhile from hanging the open.
    let mut options = OpenOptions::new();
    options
        .read(true)
        .follow(FollowSymlinks::No)
        .custom_flags(libc_nonblock());
    let file = dir.open_with(name, &options).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    check_regular(&meta)?;
    let mut text = String::new();
    file.take(MAX_JS_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| ReadError::Unreadable(e.to_string()))?;
    if text.len() as u64 > MAX_JS_FILE {
        return Err(ReadError::TooLarge);
    }
    Ok(text)
}

/// What is wrong with `meta` for a `.js` file, if anything: anything but a
/// regular file with one link, of at most [`MAX_JS_FILE`].
pub fn check_regular(meta: &cap_std::fs::Metadata) -> Result<(), ReadError> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        Err(ReadError::NotRegular("a symbolic link"))
    } else if kind.is_dir() {
        Err(ReadError::NotRegular("a directory"))
    } else if !kind.is_file() {
        Err(ReadError::NotRegular("not a regular file"))
    } else if meta.nlink() > 1 {
        // A hard link can name a file outside the project (planted after
        // the check, it would read, say, /etc/hostname): refused like a symlink.
        Err(ReadError::NotRegular("a file with more than one hard link"))
    } else if meta.len() > MAX_JS_FILE {
        Err(ReadError::TooLarge)
    } else {
        Ok(())
    }
}

/// `O_NONBLOCK` on Linux (x86-64 and aarch64 alike).
fn libc_nonblock() -> i32 {
    0o4000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(
            normalize("workers/a", "./b.js").as_deref(),
            Some("workers/a/b.js")
        );
        assert_eq!(normalize("workers/a", "../b.js").as_deref(), Some("workers/b.js"));
        assert_eq!(
            normalize("", "/workers//x/./y.js").as_deref(),
            Some("workers/x/y.js")
        );
        assert_eq!(normalize("workers", "../../etc/passwd"), None);
        assert_eq!(
            normalize("././workers/.js", "../a.js").as_deref(),
            Some("workers/a.js")
        );
        assert_eq!(normalize("../workers", "a.js"), None);
        assert_eq!(normalize("", "a\0b"), None);
    }

    /// Found by the `resolve` fuzz target: a guest-given requesting file that
    /// is not normalised must not leak into the resolved name.
    #[test]
    fn the_requesting_file_is_normalised_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("workers")).unwrap();
        std::fs::write(dir.path().join("workers/a.js"), "1").unwrap();
        let root = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
        assert_eq!(
            resolve_module(&root, "", "././workers/.js/", "../a").as_deref(),
            Ok("/workers/a.js")
        );
        assert!(resolve_module(&root, "", "/../../x/y.js", "./a").is_err());
        assert!(resolve_module(&root, "", "/work\0ers/b.js", "./a").is_err());
    }

    #[test]
    fn inside_means_strictly_below() {
        assert!(is_inside("workers", "workers/a.js"));
        assert!(!is_inside("workers", "workers"));
        assert!(!is_inside("workers", "workers2/a.js"));
        assert!(!is_inside("workers", "app.js"));
    }
}
