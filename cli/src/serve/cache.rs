//! The project cache (docs/spec.md section 9): a project is named by the SHA-256 of
//! its tar archive, and each archive is unpacked once into `DIR/HEX/`, then
//! opened like any project directory (`Project::open`: the same capability
//! rules). Unpacking takes regular files and directories only, and refuses
//! links, devices, absolute names, `..`, and archives over their size or
//! entry count. Sessions opening the same hash at once share one unpacking.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use miniworker::Project;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// The result of making one project ready, shared by every session of it.
type Ready = Arc<OnceCell<Result<Project, String>>>;

pub struct Cache {
    dir: PathBuf,
    /// Removes a temporary cache directory at exit.
    _temporary: Option<tempfile::TempDir>,
    pub max_bytes: u64,
    max_files: u64,
    projects: Mutex<HashMap<String, Ready>>,
}

/// The hex digest of `sha256:HEX`, checked.
pub fn parse_hash(project: &str) -> Result<String, String> {
    let hex = project
        .strip_prefix("sha256:")
        .ok_or("project must be sha256: and 64 lowercase hex digits")?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("project must be sha256: and 64 lowercase hex digits".into());
    }
    Ok(hex.to_owned())
}

impl Cache {
    /// A cache in `dir` (made if missing), or in a new temporary directory.
    pub fn new(dir: Option<&Path>, max_bytes: u64, max_files: u64) -> std::io::Result<Cache> {
        let (dir, temporary) = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (dir.to_path_buf(), None)
            }
            None => {
                let t = tempfile::Builder::new().prefix("miniworker-cache-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(Cache {
            dir,
            _temporary: temporary,
            max_bytes,
            max_files,
            projects: Mutex::new(HashMap::new()),
        })
    }

    fn entry(&self, hex: &str) -> Ready {
        let mut projects = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        projects.entry(hex.to_owned()).or_default().clone()
    }

    /// The project `hex`, if it is ready (here or unpacked by an earlier run).
    pub async fn get(&self, hex: &str) -> Option<Result<Project, String>> {
        let ready = self.entry(hex);
        if let Some(done) = ready.get() {
            return Some(done.clone());
        }
        let path = self.dir.join(hex);
        if !path.is_dir() {
            return None;
        }
        Some(
            ready
                .get_or_init(|| async move { open(path).await })
                .await
                .clone(),
        )
    }

    /// Checks `archive` against `hex` and makes the project ready: unpacked
    /// once, however many sessions send it. Returns whether this call
    /// unpacked it, with the project or why it cannot be used.
    pub async fn put(&self, hex: &str, archive: Vec<u8>) -> (bool, Result<Project, String>) {
        if archive.len() as u64 > self.max_bytes {
            return (
                false,
                Err(format!("the archive is over {} bytes", self.max_bytes)),
            );
        }
        let digest: String = Sha256::digest(&archive)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if digest != hex {
            return (
                false,
                Err(format!("the archive's SHA-256 is {digest}, not the project's")),
            );
        }
        let ready = self.entry(hex);
        let mut unpacked = false;
        let result = ready
            .get_or_init(|| {
                unpacked = true;
                let (dir, hex, max_files) = (self.dir.clone(), hex.to_owned(), self.max_files);
                async move {
                    let target = dir.join(&hex);
                    let unpack =
                        tokio::task::spawn_blocking(move || unpack(&archive, &dir, &hex, max_files)).await;
                    match unpack {
                        Ok(Ok(())) => open(target).await,
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err("unpacking failed".into()),
                    }
                }
            })
            .await
            .clone();
        (unpacked, result)
    }
}

async fn open(path: PathBuf) -> Result<Project, String> {
    tokio::task::spawn_blocking(move || Project::open(&path).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|_| Err("opening the project failed".into()))
}

/// Unpacks `archive` into `dir/hex`, through a temporary directory beside
/// it, so a half-unpacked project is never seen.
fn unpack(archive: &[u8], dir: &Path, hex: &str, max_files: u64) -> Result<(), String> {
    let staging = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(dir)
        .map_err(|e| format!("the cache: {e}"))?;
    let mut tar = tar::Archive::new(archive);
    let entries = tar.entries().map_err(|e| format!("not a tar archive: {e}"))?;
    let mut count = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a tar archive: {e}"))?;
        count += 1;
        if count > max_files {
            return Err(format!("the archive has more than {max_files} entries"));
        }
        let name = entry.path().map_err(|e| format!("a bad name: {e}"))?.into_owned();
        let relative = safe_relative(&name)?;
        let kind = entry.header().entry_type();
        let target = staging.path().join(&relative);
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", name.display()))?;
        } else if kind.is_file() || kind.is_contiguous() {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", name.display()))?;
            }
            let mut file =
                std::fs::File::create_new(&target).map_err(|e| format!("{}: {e}", name.display()))?;
            std::io::copy(&mut (&mut entry).take(archive.len() as u64), &mut file)
                .map_err(|e| format!("{}: {e}", name.display()))?;
        } else {
            return Err(format!(
                "{}: only regular files and directories are taken, not {kind:?}",
                name.display()
            ));
        }
    }
    let staged = staging.keep();
    match std::fs::rename(&staged, dir.join(hex)) {
        Ok(()) => Ok(()),
        // Another process of this cache unpacked it first: the same bytes.
        Err(_) if dir.join(hex).is_dir() => {
            let _ = std::fs::remove_dir_all(&staged);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staged);
            Err(format!("the cache: {e}"))
        }
    }
}

/// `name` as a plain relative path: no root, no `..`, nothing but names.
fn safe_relative(name: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for part in name.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("{}: a name with ..", name.display())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{}: an absolute name", name.display()));
            }
        }
    }
    Ok(out)
}
