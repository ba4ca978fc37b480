//! A mini-program project on disk: `app.json` (or a mini-game's
//! `game.json`), the workers directory and the
//! rules of docs/spec.md section 1, and the one path resolver that `createWorker`,
//! `require` and `import` share ([`resolve`]). Every read goes through the
//! project root's capability ([`cap_std::fs::Dir`]); [`Project::open`] is the
//! one place that uses ambient authority.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use cap_std::fs::Dir;

pub mod resolve;

use crate::resolve::ReadError;

/// Whose code asks for a module: it decides what the code may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeRole {
    /// `app.js` and what it requires: any `.js` file of the project.
    Main,
    /// A worker's files: only `.js` files inside the workers directory.
    Worker,
}

/// Every problem found with a project, all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectError {
    /// One line per problem, each naming the file (and field) it concerns.
    pub problems: Vec<String>,
}

impl fmt::Display for ProjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad project:")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProjectError {}

/// A checked mini-program project: its root, opened once as a capability, and
/// its workers directory.
#[derive(Clone)]
pub struct Project {
    inner: Arc<ProjectInner>,
}

struct ProjectInner {
    root: Dir,
    workers: String,
    kind: Kind,
}

/// A mini-program (`app.json`, `app.js`) or a mini-game (`game.json`,
/// `game.js`); when both files exist, `app.json` wins (docs/spec.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    App,
    Game,
}

impl Kind {
    /// Which kind `root` holds: a game only when it has `game.json` and no
    /// `app.json`.
    fn of(root: &Dir) -> Kind {
        let exists = |name: &str| root.symlink_metadata(name).is_ok();
        if !exists("app.json") && exists("game.json") {
            Kind::Game
        } else {
            Kind::App
        }
    }

    fn config(self) -> &'static str {
        match self {
            Kind::App => "app.json",
            Kind::Game => "game.json",
        }
    }

    fn main_script(self) -> &'static str {
        match self {
            Kind::App => "app.js",
            Kind::Game => "game.js",
        }
    }
}

impl fmt::Debug for Project {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Project")
            .field("workers", &self.inner.workers)
            .finish_non_exhaustive()
    }
}

/// The largest `app.json` read.
const MAX_APP_JSON: u64 = 1 << 20;

impl Project {
    /// Opens and checks the project at `path`.
    ///
    /// This is the one place where the library uses ambient authority: the
    /// project root is opened here, and everything else is reached through it.
    pub fn open(path: impl AsRef<Path>) -> Result<Project, ProjectError> {
        let path = path.as_ref();
        let root = Dir::open_ambient_dir(path, cap_std::ambient_authority()).map_err(|e| ProjectError {
            problems: vec![format!(
                "{}: cannot open the project directory: {e}",
                path.display()
            )],
        })?;
        Project::from_dir(root)
    }

    /// Checks the project whose root is `root`.
    pub fn from_dir(root: Dir) -> Result<Project, ProjectError> {
        let mut problems = Vec::new();
        let kind = Kind::of(&root);
        let workers = match read_workers_field(&root, kind.config()) {
            Ok(workers) => Some(workers),
            Err(p) => {
                problems.push(p);
                None
            }
        };
        if let Some(workers) = &workers {
            match resolve::open_dir(&root, workers) {
                Ok(dir) => scan_workers(&dir, workers, &mut problems),
                Err(e) => problems.push(format!(
                    "{}: \"workers\": '{workers}' is not a directory below the project root ({})",
                    kind.config(),
                    match e {
                        ReadError::NotFound => "no such directory".to_string(),
                        other => other.to_string(),
                    }
                )),
            }
        }
        match (workers, problems.is_empty()) {
            (Some(workers), true) => Ok(Project {
                inner: Arc::new(ProjectInner { root, workers, kind }),
            }),
            _ => Err(ProjectError { problems }),
        }
    }

    /// The workers directory, project-relative without a leading `/` (`workers`).
    pub fn workers_dir(&self) -> &str {
        &self.inner.workers
    }

    /// Resolves a `createWorker` script path (docs/spec.md section 2): project-relative,
    /// a leading `/` tolerated, exactly an existing regular `.js` file inside the
    /// workers directory. Returns the normalised path and the file's text.
    pub fn worker_script(&self, script: &str) -> Result<(String, String), String> {
        let path =
            resolve::normalize("", script).ok_or_else(|| format!("'{script}' leads outside the project"))?;
        if !resolve::is_inside(&self.inner.workers, &path) {
            return Err(format!(
                "'{script}' is not inside the workers directory '{}'",
                self.inner.workers
            ));
        }
        if !path.ends_with(".js") {
            return Err(format!("'{script}' is not a .js file"));
        }
        let source = resolve::read_file(&self.inner.root, &path).map_err(|e| match e {
            ReadError::NotFound => format!("'{script}' does not exist"),
            other => format!("'{script}': {other}"),
        })?;
        Ok((path, source))
    }

    /// The directory module code of `role` is confined to: the workers
    /// directory for a worker, the whole project for the main thread.
    fn module_scope(&self, role: CodeRole) -> &str {
        match role {
            CodeRole::Worker => &self.inner.workers,
            CodeRole::Main => "",
        }
    }

    /// Resolves `require(request)` or `import request` in the file `from`
    /// (project-relative, leading `/`) of `role`'s code: the module's file in
    /// the same form, or the message JavaScript throws (docs/spec.md section 3).
    pub fn resolve_module(&self, role: CodeRole, from: &str, request: &str) -> Result<String, String> {
        resolve::resolve_module(&self.inner.root, self.module_scope(role), from, request)
    }

    /// Reads a module file that [`Project::resolve_module`] gave, checking
    /// the name again (the caller may be a guest).
    pub fn load_module(&self, role: CodeRole, filename: &str) -> Result<String, String> {
        resolve::load_module(&self.inner.root, self.module_scope(role), filename)
    }

    /// The main thread's script: `app.js`, or `game.js` for a mini-game.
    pub fn main_script(&self) -> &'static str {
        self.inner.kind.main_script()
    }

    /// Reads the main thread's script ([`Project::main_script`]), needed
    /// only to run the JavaScript main thread.
    pub fn app_js(&self) -> Result<String, String> {
        let name = self.main_script();
        resolve::read_file(&self.inner.root, name).map_err(|e| match e {
            ReadError::NotFound => format!("{name}: missing (it is needed to run the main thread)"),
            other => format!("{name}: {other}"),
        })
    }
}

/// Reads `config` (`app.json` or `game.json`) and returns its normalised
/// `workers` path.
fn read_workers_field(root: &Dir, config: &str) -> Result<String, String> {
    read_workers(root, config).map_err(|e| format!("{config}: {e}"))
}

fn read_workers(root: &Dir, config: &str) -> Result<String, String> {
    let text = resolve::read_file(root, config).map_err(|e| match e {
        ReadError::NotFound => "missing".to_string(),
        ReadError::TooLarge => format!("larger than {} KiB", MAX_APP_JSON >> 10),
        other => other.to_string(),
    })?;
    if text.len() as u64 > MAX_APP_JSON {
        return Err(format!("larger than {} KiB", MAX_APP_JSON >> 10));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column()))?;
    let field = json
        .as_object()
        .ok_or("the top level must be an object")?
        .get("workers")
        .ok_or("no \"workers\" field")?;
    let raw = match field {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Object(o) => o
            .get("path")
            .and_then(|p| p.as_str())
            .ok_or("\"workers\" is an object without a string \"path\"")?,
        _ => return Err("\"workers\" must be a string or an object with a \"path\"".into()),
    };
    match resolve::normalize("", raw) {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(format!(
            "\"workers\": '{raw}' must name a directory strictly below the project root"
        )),
    }
}

/// Lists every entry under the workers directory that is not a regular `.js`
/// file of at most 16 MiB with one link. Iterative, so no directory depth
/// recurses; a directory is opened only when its turn comes, so any number
/// of them is scanned with one descriptor open per level at most.
fn scan_workers(dir: &Dir, workers: &str, problems: &mut Vec<String>) {
    // Directories still to scan: path below `dir` ("" for itself), as shown.
    let mut pending = vec![(String::new(), workers.to_string())];
    while let Some((below, rel)) = pending.pop() {
        let dir = match resolve::open_dir(dir, &below) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{rel}: cannot open: {e}"));
                continue;
            }
        };
        let entries = match dir.entries() {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(format!("{rel}: cannot list: {e}"));
                continue;
            }
        };
        let mut names = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => names.push(entry.file_name()),
                Err(e) => problems.push(format!("{rel}: cannot list: {e}")),
            }
        }
        names.sort();
        for name in names {
            let shown = escaped(&name);
            let path = format!("{rel}/{shown}");
            let meta = match dir.symlink_metadata(&name) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(format!("{path}: {e}"));
                    continue;
                }
            };
            let Some(utf8) = name.to_str() else {
                problems.push(format!("{path}: a name that is not UTF-8"));
                continue;
            };
            if meta.is_dir() {
                let below = if below.is_empty() {
                    utf8.to_string()
                } else {
                    format!("{below}/{utf8}")
                };
                pending.push((below, path));
                continue;
            }
            if !utf8.ends_with(".js") {
                problems.push(format!("{path}: only .js files may be in the workers directory"));
            } else if let Err(e) = resolve::check_regular(&meta) {
                problems.push(format!(
                    "{path}: {e} (only regular .js files may be in the workers directory)"
                ));
            }
        }
    }
    problems.sort();
}

/// A file name for a message: as it is when UTF-8, else with each byte that
/// is not part of valid UTF-8 as `\xNN`.
fn escaped(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes()
        .utf8_chunks()
        .fold(String::new(), |mut out, chunk| {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
            out
        })
}
