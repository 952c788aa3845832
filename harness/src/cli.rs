//! The examples' command-line flags: `--name value` or `--name=value`, each checked, each
//! mistake reported in one line.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::str::FromStr;

use anyhow::{Result, bail};

/// The flags given to an example, consumed one by one; [`Args::finish`] rejects the rest.
///
/// ```
/// use harness::cli::Args;
///
/// let given = ["--clients", "10", "--strategy=occ"].map(String::from);
/// let mut args = Args::parse(given)?;
/// assert_eq!(args.number("clients", 5, 1..=100)?, 10);
/// assert_eq!(args.number("per-client", 50, 1..=10_000)?, 50); // absent: the default
/// assert_eq!(args.choice("strategy", "all", &["all", "none", "occ"])?, "occ");
/// args.finish()?;
///
/// let mut args = Args::parse(["--clients", "0"].map(String::from))?;
/// let refused = args.number("clients", 5, 1..=100).unwrap_err();
/// assert_eq!(refused.to_string(), r#"--clients must be a whole number from 1 to 100, got "0""#);
/// # anyhow::Ok(())
/// ```
#[derive(Debug)]
pub struct Args {
    given: BTreeMap<String, String>,
}

impl Args {
    /// Reads the process's arguments. `--help` prints `usage` and exits successfully.
    pub fn from_env(usage: &str) -> Result<Args> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!("{usage}");
            std::process::exit(0);
        }
        Args::parse(args)
    }

    /// Parses `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args> {
        let mut given = BTreeMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                bail!(
                    "unexpected argument {arg:?}; flags look like --name value (try --help)"
                );
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_string(), value.to_string()),
                None => match args.next() {
                    Some(value) => (flag.to_string(), value),
                    None => bail!("--{flag} needs a value"),
                },
            };
            if given.insert(name.clone(), value).is_some() {
                bail!("--{name} is given twice");
            }
        }
        Ok(Args { given })
    }

    /// A whole number flag within `range`, or `default` if absent.
    pub fn number<T>(
        &mut self,
        name: &str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(raw) = self.given.remove(name) else {
            return Ok(default);
        };
        match raw.parse::<T>() {
            Ok(value) if range.contains(&value) => Ok(value),
            _ => bail!(
                "--{name} must be a whole number from {} to {}, got {raw:?}",
                range.start(),
                range.end()
            ),
        }
    }

    /// One of `choices`, or `default` if absent.
    pub fn choice(
        &mut self,
        name: &str,
        default: &str,
        choices: &[&str],
    ) -> Result<String> {
        let Some(raw) = self.given.remove(name) else {
            return Ok(default.to_string());
        };
        if choices.contains(&raw.as_str()) {
            Ok(raw)
        } else {
            bail!(
                "--{name} must be one of {}, got {raw:?}",
                choices.join(", ")
            )
        }
    }

    /// A free-form flag (a path, a list), or `default` if absent.
    ///
    /// ```
    /// let mut args = harness::cli::Args::parse(["--out", "target/x"].map(String::from))?;
    /// assert_eq!(args.text("out", "src/data")?, "target/x");
    /// assert_eq!(args.text("clients", "1,2,4")?, "1,2,4");
    /// # anyhow::Ok(())
    /// ```
    pub fn text(&mut self, name: &str, default: &str) -> Result<String> {
        Ok(self
            .given
            .remove(name)
            .unwrap_or_else(|| default.to_string()))
    }

    /// Fails on any flag nobody asked for (a typo, usually).
    pub fn finish(self) -> Result<()> {
        match self.given.keys().next() {
            None => Ok(()),
            Some(name) => bail!("unknown flag --{name} (try --help)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args> {
        Args::parse(list.iter().map(|s| s.to_string()))
    }

    /// Both spellings work and absent flags take their defaults.
    #[test]
    fn reads_both_spellings_and_defaults() {
        let mut a = args(&["--clients", "7", "--per-client=3"]).unwrap();
        assert_eq!(a.number("clients", 5u32, 1..=100).unwrap(), 7);
        assert_eq!(a.number("per-client", 50u32, 1..=100).unwrap(), 3);
        assert_eq!(
            a.choice("strategy", "all", &["all", "none"]).unwrap(),
            "all"
        );
        a.finish().unwrap();
    }

    /// Zero, words and unknown flags are refused with a message naming the flag.
    #[test]
    fn refuses_bad_values_and_unknown_flags() {
        let err = args(&["--clients", "0"])
            .unwrap()
            .number("clients", 5u32, 1..=100)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"--clients must be a whole number from 1 to 100, got "0""#
        );
        let err = args(&["--clients", "abc"])
            .unwrap()
            .number("clients", 5u32, 1..=100)
            .unwrap_err();
        assert!(err.to_string().contains(r#"got "abc""#));
        let err = args(&["--clinets", "3"]).unwrap().finish().unwrap_err();
        assert_eq!(err.to_string(), "unknown flag --clinets (try --help)");
        assert!(args(&["--clients"]).is_err());
        assert!(args(&["five"]).is_err());
    }
}
