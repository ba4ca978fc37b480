//! The server's settings (docs/spec.md section 9): every key of the TOML config file
//! is the flag of the same name. The file's keys become flags placed before
//! the command line's own, so one clap definition holds every key, its
//! check and its default, and a flag given on the command line wins.

use std::path::PathBuf;

use crate::flags::{self, LimitFlags};

/// `miniworker serve`: sessions over WebSocket.
#[derive(clap::Args)]
#[command(args_override_self = true)]
pub struct ServeArgs {
    /// A TOML file of settings: each key is a flag below, without its dashes
    /// (`capacity = 64`, `auth-key-file = "/run/secrets/key"`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data listener: WebSocket sessions at /v1/session.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The admin listener: /healthz, /readyz, /metrics (not for the public).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub admin: String,
    /// Sessions this host holds at once; an open past it is refused (1013).
    /// Lowered to what the machine holds if that is fewer.
    #[arg(long, value_name = "COUNT", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub capacity: u32,
    /// How long open sessions may run on after SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = flags::parse_seconds, default_value = "25s")]
    pub drain_timeout: f64,
    /// Time between pings; a client that misses two is ended ("idle").
    #[arg(long, value_name = "DURATION", value_parser = flags::parse_seconds, default_value = "10s")]
    pub ping_interval: f64,
    /// How long a client has for `open`, and again for the project archive.
    #[arg(long, value_name = "DURATION", value_parser = flags::parse_seconds, default_value = "30s")]
    pub open_timeout: f64,
    /// The largest project archive; bare numbers are bytes.
    #[arg(long, value_name = "SIZE", value_parser = flags::parse_bytes, default_value = "16MiB")]
    pub max_project_bytes: flags::Size,
    /// The most entries (files and directories) in a project archive.
    #[arg(long, value_name = "COUNT", default_value_t = 10_000)]
    pub max_project_files: u64,
    /// The content-addressed project cache (default: a new temporary
    /// directory, removed at exit).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The HS256 key sessions' tokens are signed with; without a key (or a
    /// key file) sessions need no token.
    #[arg(long, value_name = "KEY", conflicts_with = "auth_key_file")]
    pub auth_key: Option<String>,
    /// A file holding the HS256 key (its content, trailing newline removed).
    #[arg(long, value_name = "FILE")]
    pub auth_key_file: Option<PathBuf>,
    /// Sessions one tenant (a token's `sub`) may hold on this host (1008 past it).
    #[arg(long, value_name = "COUNT")]
    pub tenant_sessions: Option<u32>,
    /// Memory one tenant may reserve on this host: the sum of its sessions'
    /// context memory limits (1008 past it); bare numbers are MiB.
    #[arg(long, value_name = "SIZE", value_parser = flags::parse_mib)]
    pub tenant_memory: Option<flags::Size>,
    /// Opens per second one tenant may make on this host (1008 past it).
    #[arg(long, value_name = "COUNT")]
    pub tenant_opens_per_second: Option<u32>,
    /// Serve the playground at / on the data listener: a page that opens a
    /// session from the browser, shows its event stream and posts messages.
    #[arg(long)]
    pub playground: bool,
    /// The ceilings of every session's limits (a token's `lim` may only lower them).
    #[command(flatten)]
    pub limits: LimitFlags,
}

/// The command line with the config file's keys spliced in as flags right
/// after `serve` (so the command line's own flags come later and win).
/// Other commands' arguments come back unchanged.
pub fn with_config_file(args: Vec<String>) -> Result<Vec<String>, String> {
    if args.get(1).map(String::as_str) != Some("serve") {
        return Ok(args);
    }
    let mut path = None;
    for (i, arg) in args.iter().enumerate().skip(2) {
        if let Some(p) = arg.strip_prefix("--config=") {
            path = Some(p.to_owned());
        } else if arg == "--config" {
            path = args.get(i + 1).cloned();
        }
    }
    let Some(path) = path else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("--config {path}: {e}"))?;
    let table: toml::Table = text.parse().map_err(|e| format!("--config {path}: {e}"))?;
    let mut flags = Vec::new();
    for (key, value) in table {
        let flag = format!("--{key}");
        match value {
            toml::Value::Boolean(true) => flags.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => flags.push(format!("{flag}={s}")),
            toml::Value::Integer(n) => flags.push(format!("{flag}={n}")),
            toml::Value::Float(x) => flags.push(format!("{flag}={x}")),
            other => {
                return Err(format!(
                    "--config {path}: {key} is {}: a key takes a string, a number or a boolean",
                    other.type_str()
                ));
            }
        }
    }
    let mut out = args[..2].to_vec();
    out.extend(flags);
    out.extend_from_slice(&args[2..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_come_before_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            "capacity = 16\nplayground = true\nflag-off = false\ndrain-timeout = 2.5\nlisten = \"0.0.0.0:1\"\n",
        )
        .unwrap();
        let args: Vec<String> = [
            "miniworker",
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--capacity",
            "8",
        ]
        .map(String::from)
        .to_vec();
        let out = with_config_file(args).unwrap();
        assert_eq!(
            out[2..6],
            [
                "--capacity=16",
                "--drain-timeout=2.5",
                "--listen=0.0.0.0:1",
                "--playground"
            ]
        );
        assert_eq!(out.last().map(String::as_str), Some("8"));
    }
}
