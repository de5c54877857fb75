//! `setup`'s questions on the terminal: with a default that Enter takes, again after an invalid
//! answer, yes/no and menus. Without a terminal (or with `--yes`) nothing is asked and the
//! default is the answer.

use crate::ui::usage;
use anyhow::Result;
use std::io::{BufRead, Write};

/// Questions on the terminal, or none.
pub struct Asker {
    pub tty: bool,
}

impl Asker {
    /// Asks with a default; Enter takes the default. Without a terminal, the default.
    pub fn ask(&self, q: &str, default: &str) -> Result<String> {
        if !self.tty {
            return Ok(default.to_string());
        }
        if default.is_empty() {
            eprint!("{q}: ");
        } else {
            eprint!("{q} [{default}]: ");
        }
        std::io::stderr().flush()?;
        let mut l = String::new();
        if std::io::stdin().lock().read_line(&mut l)? == 0 {
            return Err(usage("setup cancelled (end of input)"));
        }
        let l = l.trim();
        Ok(if l.is_empty() { default.to_string() } else { l.to_string() })
    }

    /// Asks until `check` accepts the answer, saying why each rejected one is wrong; without a
    /// terminal the default must pass (else a usage error naming `flag`).
    pub fn ask_valid<T>(
        &self,
        q: &str,
        default: &str,
        flag: &str,
        check: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<T> {
        if !self.tty {
            return check(default).map_err(|e| usage(format!("{flag}: {e}")));
        }
        loop {
            let a = self.ask(q, default)?;
            match check(&a) {
                Ok(v) => return Ok(v),
                Err(e) => eprintln!("{e}; try again"),
            }
        }
    }

    /// A yes/no question; Enter takes `default`. Without a terminal, `default`.
    pub fn confirm(&self, q: &str, default: bool) -> Result<bool> {
        if !self.tty {
            return Ok(default);
        }
        loop {
            let a = self.ask(q, if default { "Y/n" } else { "y/N" })?;
            match a.to_ascii_lowercase().as_str() {
                "y/n" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => eprintln!("please answer y or n"),
            }
        }
    }

    /// A choice among `options` (by number or name).
    pub fn choose(&self, q: &str, options: &[(&str, &str)], default: usize) -> Result<usize> {
        if !self.tty {
            return Ok(default);
        }
        eprintln!("{q}");
        for (i, (name, what)) in options.iter().enumerate() {
            eprintln!("  {}) {name}: {what}", i + 1);
        }
        loop {
            let a = self.ask("choose", &(default + 1).to_string())?;
            if let Ok(n) = a.parse::<usize>() {
                if (1..=options.len()).contains(&n) {
                    return Ok(n - 1);
                }
            }
            if let Some(i) = options.iter().position(|(n, _)| n.eq_ignore_ascii_case(&a)) {
                return Ok(i);
            }
            eprintln!("please answer 1 to {}", options.len());
        }
    }
}
