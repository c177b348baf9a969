//! Binding a tokenised command line to its command in the table: positionals in order,
//! flags by name, with usage errors that quote the command's usage line.

use super::commands::{COMMANDS, CommandSpec, find};

/// A command line bound to its command: positionals in order, flags by name.
#[derive(Debug)]
pub struct Invocation {
    pub spec: &'static CommandSpec,
    pub positionals: Vec<String>,
    flags: Vec<(&'static str, Option<String>)>,
}

impl Invocation {
    pub fn positional(&self, index: usize) -> Option<&str> {
        self.positionals.get(index).map(String::as_str)
    }

    /// The value of a flag that is not repeatable.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(flag, _)| *flag == name)
            .and_then(|(_, value)| value.as_deref())
    }

    pub fn switch(&self, name: &str) -> bool {
        self.flags.iter().any(|(flag, _)| *flag == name)
    }

    /// Every value of a repeatable flag, comma-separated values split.
    pub fn flag_values(&self, name: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(flag, _)| *flag == name)
            .filter_map(|(_, value)| value.as_deref())
            .flat_map(|value| value.split(','))
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A command line that does not fit its command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("unknown command `{0}`{hint}", hint = did_you_mean(.0))]
    UnknownCommand(String),
    #[error("`{command}` has no flag --{flag} (usage: {command} {usage})")]
    UnknownFlag {
        command: &'static str,
        flag: String,
        usage: &'static str,
    },
    #[error("--{flag} needs a value")]
    MissingFlagValue { flag: &'static str },
    #[error("--{flag} takes no value")]
    UnexpectedFlagValue { flag: &'static str },
    #[error("`{command}` needs {argument} (usage: {command} {usage})")]
    MissingArgument {
        command: &'static str,
        argument: &'static str,
        usage: &'static str,
    },
    #[error("`{command}` takes at most {max} argument(s) (usage: {command} {usage})")]
    TooManyArguments {
        command: &'static str,
        max: usize,
        usage: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The closest command name within two edits, else a pointer to `help`.
fn did_you_mean(name: &str) -> String {
    const MAX_EDITS: usize = 2;
    COMMANDS
        .iter()
        .map(|command| (strsim::levenshtein(name, command.name), command.name))
        .filter(|(edits, _)| *edits <= MAX_EDITS)
        .min()
        .map_or_else(
            || " (try `help`)".to_owned(),
            |(_, closest)| format!("; did you mean `{closest}`?"),
        )
}

/// Binds the words of a command line to its command.
pub fn bind(words: &[String]) -> Result<Invocation, UsageError> {
    let Some((name, rest)) = words.split_first() else {
        return Err(UsageError::Invalid("empty command".into()));
    };
    let spec = find(name).ok_or_else(|| UsageError::UnknownCommand(name.clone()))?;
    let mut positionals = Vec::new();
    let mut flags = Vec::new();
    let mut rest = rest.iter();
    while let Some(word) = rest.next() {
        let Some(flag_text) = word.strip_prefix("--").filter(|text| !text.is_empty()) else {
            positionals.push(word.clone());
            continue;
        };
        let (flag_name, inline_value) = match flag_text.split_once('=') {
            Some((flag_name, inline)) => (flag_name, Some(inline.to_owned())),
            None => (flag_text, None),
        };
        let flag = spec
            .flags
            .iter()
            .find(|flag| flag.name == flag_name)
            .ok_or_else(|| UsageError::UnknownFlag {
                command: spec.name,
                flag: flag_name.to_owned(),
                usage: spec.usage,
            })?;
        let value = match (flag.value, inline_value) {
            (None, Some(_)) => return Err(UsageError::UnexpectedFlagValue { flag: flag.name }),
            (None, None) => None,
            (Some(_), Some(inline)) => Some(inline),
            (Some(_), None) => Some(
                rest.next()
                    .cloned()
                    .ok_or(UsageError::MissingFlagValue { flag: flag.name })?,
            ),
        };
        if !flag.repeats && flags.iter().any(|(given, _)| *given == flag.name) {
            return Err(UsageError::Invalid(format!(
                "--{} is given twice",
                flag.name
            )));
        }
        flags.push((flag.name, value));
    }
    if positionals.len() > spec.positionals.len() {
        return Err(UsageError::TooManyArguments {
            command: spec.name,
            max: spec.positionals.len(),
            usage: spec.usage,
        });
    }
    if let Some(missing) = spec.positionals[positionals.len()..]
        .iter()
        .find(|positional| positional.required)
    {
        return Err(UsageError::MissingArgument {
            command: spec.name,
            argument: missing.name,
            usage: spec.usage,
        });
    }
    Ok(Invocation {
        spec,
        positionals,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::repl::commands::Action;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_bind_by_name_and_positionals_by_order() {
        let invocation = bind(&words("create order 1 o-1 --key k1 --ctx={}"));
        let invocation = invocation.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(invocation.spec.action, Action::Create);
        assert_eq!(invocation.positionals, ["order", "1", "o-1"]);
        assert_eq!(invocation.flag("key"), Some("k1"));
        assert_eq!(invocation.flag("ctx"), Some("{}"));
    }

    #[test]
    fn repeated_and_comma_separated_filters_add_up() {
        let invocation = bind(&words("watch --machine a,b --machine c --no-ctx"));
        let invocation = invocation.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(invocation.flag_values("machine"), ["a", "b", "c"]);
        assert!(invocation.switch("no-ctx"));
    }

    #[test]
    fn mistakes_name_the_command_and_its_usage() {
        assert!(matches!(
            bind(&words("get")),
            Err(UsageError::MissingArgument {
                argument: "instance_id",
                ..
            })
        ));
        assert!(matches!(
            bind(&words("get a b")),
            Err(UsageError::TooManyArguments { max: 1, .. })
        ));
        assert!(matches!(
            bind(&words("compact --forse")),
            Err(UsageError::UnknownFlag { .. })
        ));
        assert_eq!(
            bind(&words("frobnicate")).err(),
            Some(UsageError::UnknownCommand("frobnicate".into()))
        );
        let typo = bind(&words("aplly x Y")).err().map(|e| e.to_string());
        assert_eq!(
            typo.as_deref(),
            Some("unknown command `aplly`; did you mean `apply`?")
        );
    }
}
