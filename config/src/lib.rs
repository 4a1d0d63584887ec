//! Config files for keel's daemons (`/etc/keel/agent.yaml`,
//! `/etc/keel/control.yaml`).
//!
//! A file is one YAML mapping whose keys are the daemon's long flag names
//! (`network-mode: vxlan`, `cni-bin-dir: [/opt/cni/bin]`); lists are YAML
//! lists, on/off flags YAML booleans. Precedence, highest first: the
//! command line, the flag's environment variable, the file, the built-in
//! default. A missing file at the default path is fine (every value has a
//! default); a missing file named with the config-file flag or its
//! environment variable is an error. Unknown keys and bad values are
//! refused at start with the file, the key and the reason.
//!
//! The file is applied by turning each key the command line and the
//! environment leave unset into `--key=value` ahead of the real arguments
//! and parsing once more, so a value from the file goes through exactly the
//! flag's own parser and checks. Each value is first checked on its own,
//! so a bad one is reported against the file rather than as a flag.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use clap::{Arg, ArgAction, ArgMatches, Command, Parser, parser::ValueSource};
use serde_yaml_ng::Value;

#[cfg(test)]
mod tests;

/// Which flag names the config file and where it is by default.
#[derive(Debug, Clone, Copy)]
pub struct FileFlag {
    /// The clap id of the flag naming the file (e.g. `config_file`); the
    /// flag itself cannot be set from the file.
    pub id: &'static str,
    /// Read when the flag is not given; its absence is not an error.
    pub default_path: &'static str,
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    /// The environment variable of that name.
    Env(String),
    File,
    Default,
    /// No value and no default.
    Unset,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Flag => f.write_str("flag"),
            Self::Env(v) => write!(f, "env {v}"),
            Self::File => f.write_str("file"),
            Self::Default => f.write_str("default"),
            Self::Unset => f.write_str("unset"),
        }
    }
}

/// One key of the effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// The raw values, as a flag would carry them.
    pub values: Vec<String>,
    /// Whether the key takes a list.
    pub list: bool,
    pub source: Source,
}

/// The configuration a daemon runs with, for `config show`.
#[derive(Debug, Clone)]
pub struct Effective {
    /// The file that was read (None: none at the default path).
    pub file: Option<PathBuf>,
    pub entries: Vec<Entry>,
}

impl Effective {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The configuration as a config file, each key commented with where
    /// its value came from; keys without a value are commented out, so the
    /// text loads back as the same configuration.
    pub fn to_yaml(&self, program: &str) -> String {
        let mut out = format!("# {program}'s effective configuration; ");
        match &self.file {
            Some(f) => {
                let _ = writeln!(out, "config file: {}", f.display());
            }
            None => out.push_str("no config file\n"),
        }
        for e in &self.entries {
            if e.source == Source::Unset && !e.list {
                let _ = writeln!(out, "# {}:  # unset", e.key);
                continue;
            }
            let value = if e.list {
                Value::Sequence(e.values.iter().map(|v| scalar(v)).collect())
            } else {
                scalar(e.values.first().map(String::as_str).unwrap_or_default())
            };
            let mut one = serde_yaml_ng::Mapping::new();
            one.insert(Value::String(e.key.clone()), value);
            let text = serde_yaml_ng::to_string(&one).unwrap_or_default();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or_default();
            let _ = writeln!(out, "{first}  # {}", e.source);
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }
}

/// A raw value as YAML: booleans stay booleans, everything else a string
/// (the loader accepts numbers as strings and the reverse).
fn scalar(v: &str) -> Value {
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        v => Value::String(v.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line error, printed and exited on as clap does.
    #[error(transparent)]
    Cli(#[from] clap::Error),
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: not YAML: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("config file {path}: expected a mapping of flag names to values, e.g. `{example}`")]
    NotAMapping { path: PathBuf, example: String },
    #[error("config file {path}: {key}: {reason}")]
    Key {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// Parses the process's command line with the config file under it, or
/// prints the error and exits (status 2, as for a bad flag).
pub fn parse_or_exit<T: Parser>(file: FileFlag) -> (T, Effective) {
    parse_or_exit_from(std::env::args_os(), file)
}

/// [`parse_or_exit`] over a given command line (its first item the
/// program), for binaries that rewrite it first (`keel-agent join`).
pub fn parse_or_exit_from<T: Parser, I, A>(argv: I, file: FileFlag) -> (T, Effective)
where
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    match load_from(argv, file) {
        Ok(r) => r,
        Err(Error::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2)
        }
    }
}

/// [`parse_or_exit`] over a given command line (its first item the program).
pub fn load_from<T: Parser, I, A>(argv: I, file: FileFlag) -> Result<(T, Effective), Error>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let cmd = T::command();
    let first = cmd.clone().try_get_matches_from(&argv)?;
    let explicit = first.get_raw(file.id).and_then(|mut v| v.next());
    let (path, text) = match explicit {
        Some(p) => {
            let p = PathBuf::from(p);
            let text = std::fs::read_to_string(&p).map_err(|source| Error::Read {
                path: p.clone(),
                source,
            })?;
            (Some(p), text)
        }
        None => {
            let p = PathBuf::from(file.default_path);
            match std::fs::read_to_string(&p) {
                Ok(text) => (Some(p), text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, String::new()),
                Err(source) => return Err(Error::Read { path: p, source }),
            }
        }
    };
    let keyed = keyed_args(&cmd, file.id);
    let mut from_file = BTreeSet::new();
    let mut injected: Vec<OsString> = Vec::new();
    if let Some(path) = &path {
        for (key, value) in read_mapping(path, &text, &keyed)? {
            let arg = keyed
                .iter()
                .find(|a| a.get_long() == Some(key.as_str()))
                .ok_or_else(|| Error::Key {
                    path: path.clone(),
                    key: key.clone(),
                    reason: unknown_key(&key, &keyed, file.id, &cmd),
                })?;
            let fragments = fragments(arg, &key, &value).map_err(|reason| Error::Key {
                path: path.clone(),
                key: key.clone(),
                reason,
            })?;
            // Checked even when the command line overrides it: a bad file
            // is refused whatever else is given.
            let id = arg.get_id().as_str();
            if matches!(
                first.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            from_file.insert(id.to_string());
            injected.extend(fragments.into_iter().map(OsString::from));
        }
    }
    let mut full = Vec::with_capacity(argv.len() + injected.len());
    full.extend(argv.first().cloned());
    full.extend(injected);
    full.extend(argv.iter().skip(1).cloned());
    let mut matches = cmd.clone().try_get_matches_from(full)?;
    let entries = keyed
        .iter()
        .map(|a| entry(a, &first, &matches, &from_file))
        .collect();
    let args = T::from_arg_matches_mut(&mut matches)?;
    Ok((
        args,
        Effective {
            file: path,
            entries,
        },
    ))
}

/// The arguments a file may set: every long flag but help, version and
/// the file flag itself.
fn keyed_args(cmd: &Command, file_id: &str) -> Vec<Arg> {
    cmd.get_arguments()
        .filter(|a| a.get_long().is_some() && !a.is_positional())
        .filter(|a| !["help", "version", file_id].contains(&a.get_id().as_str()))
        .filter(|a| {
            !matches!(
                a.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
        })
        .cloned()
        .collect()
}

fn read_mapping(path: &Path, text: &str, keyed: &[Arg]) -> Result<Vec<(String, Value)>, Error> {
    let value: Value = serde_yaml_ng::from_str(text).map_err(|source| Error::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    let example = keyed
        .first()
        .and_then(Arg::get_long)
        .map(|l| format!("{l}: VALUE"))
        .unwrap_or_default();
    match value {
        // An empty file (or only comments).
        Value::Null => Ok(Vec::new()),
        Value::Mapping(m) => m
            .into_iter()
            .map(|(k, v)| match k {
                Value::String(k) => Ok((k, v)),
                other => Err(Error::Key {
                    path: path.to_path_buf(),
                    key: format!("{other:?}"),
                    reason: "keys are flag names (strings)".into(),
                }),
            })
            .collect(),
        _ => Err(Error::NotAMapping {
            path: path.to_path_buf(),
            example,
        }),
    }
}

fn unknown_key(key: &str, keyed: &[Arg], file_id: &str, cmd: &Command) -> String {
    let file_long = cmd
        .get_arguments()
        .find(|a| a.get_id() == file_id)
        .and_then(Arg::get_long);
    if Some(key) == file_long {
        return "the config file cannot name another config file".into();
    }
    let close: Vec<&str> = keyed
        .iter()
        .filter_map(Arg::get_long)
        .filter(|l| similar(l, key))
        .collect();
    if close.is_empty() {
        "unknown key (keys are the long flag names, see --help)".into()
    } else {
        format!("unknown key; did you mean {}?", close.join(" or "))
    }
}

/// Same words in another order or spelling: equal after dropping dashes and
/// underscores, or one a prefix of the other.
fn similar(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace(['-', '_'], "").to_ascii_lowercase();
    let (a, b) = (norm(a), norm(b));
    a == b || (b.len() >= 4 && a.starts_with(&b)) || (a.len() >= 4 && b.starts_with(&a))
}

fn is_flag(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// The `--key=value` arguments standing for one key of the file, each
/// value checked by the flag's own parser.
fn fragments(arg: &Arg, key: &str, value: &Value) -> Result<Vec<String>, String> {
    if is_flag(arg) {
        let Value::Bool(b) = value else {
            return Err(format!("expected true or false, got {}", describe(value)));
        };
        let on = matches!(arg.get_action(), ArgAction::SetTrue);
        return Ok(if *b == on {
            vec![format!("--{key}")]
        } else {
            Vec::new()
        });
    }
    let items: Vec<String> = match value {
        Value::Sequence(items) if is_list(arg) => items
            .iter()
            .map(|v| {
                scalar_text(v)
                    .ok_or_else(|| format!("list items must be plain values, got {}", describe(v)))
            })
            .collect::<Result<_, _>>()?,
        Value::Sequence(_) => return Err("takes one value, not a list".into()),
        Value::Null => {
            return Err("no value (remove the key to use the default)".into());
        }
        v => vec![
            scalar_text(v).ok_or_else(|| format!("expected a plain value, got {}", describe(v)))?,
        ],
    };
    items
        .into_iter()
        .map(|item| {
            check(arg, key, &item)?;
            Ok(format!("--{key}={item}"))
        })
        .collect()
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Runs the flag's parser (and possible values) on one value, alone.
fn check(arg: &Arg, key: &str, item: &str) -> Result<(), String> {
    let mut one = Arg::new("value")
        .long(key.to_string())
        .num_args(1)
        .allow_hyphen_values(true)
        .value_parser(arg.get_value_parser().clone());
    if let Some(names) = arg.get_value_names() {
        one = one.value_names(names.iter().cloned());
    }
    Command::new("keel")
        .no_binary_name(true)
        .color(clap::ColorChoice::Never)
        .disable_help_flag(true)
        .arg(one)
        .try_get_matches_from([format!("--{key}={item}")])
        .map(drop)
        .map_err(|e| {
            let text = e.to_string();
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .map(|l| l.strip_prefix("error: ").unwrap_or(l))
                .collect::<Vec<_>>()
                .join(" ")
        })
}

fn entry(arg: &Arg, first: &ArgMatches, last: &ArgMatches, from_file: &BTreeSet<String>) -> Entry {
    let id = arg.get_id().as_str();
    let values: Vec<String> = last
        .get_raw(id)
        .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let source = match first.value_source(id) {
        Some(ValueSource::CommandLine) => Source::Flag,
        Some(ValueSource::EnvVariable) => Source::Env(
            arg.get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        _ if from_file.contains(id) => Source::File,
        _ if !values.is_empty() => Source::Default,
        _ => Source::Unset,
    };
    Entry {
        key: arg.get_long().unwrap_or(id).to_string(),
        values,
        list: is_list(arg),
        source,
    }
}
