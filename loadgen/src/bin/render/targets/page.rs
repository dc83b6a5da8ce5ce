//! What targets.md is made of, and what every target's rows share: the verdict and the
//! commands the runs recorded.

use std::path::PathBuf;

use serde_json::Value;

use crate::results::command_of;

/// The runs of one experiment: each report with its path.
pub type Runs = [(PathBuf, Value)];

/// What targets.md is made of.
#[derive(Debug, Default)]
pub struct Page {
    /// (target, what, goal, median, verdict, per run).
    pub rows: Vec<[String; 6]>,
    pub details: Vec<String>,
    /// (experiment, command), the command as its first run recorded it.
    pub commands: Vec<(String, Option<String>)>,
}

impl Page {
    pub fn row(
        &mut self,
        target: &str,
        what: String,
        goal: &str,
        measured: String,
        verdict: &str,
        runs: String,
    ) {
        self.rows.push([target.to_owned(), what, goal.to_owned(), measured, verdict.to_owned(), runs]);
    }
}

pub fn verdict(value: Option<f64>, goal: f64, at_least: bool) -> &'static str {
    match value {
        None => "not measured",
        Some(v) if (at_least && v >= goal) || (!at_least && v <= goal) => "**met**",
        Some(_) => "**missed**",
    }
}

pub fn first_command(runs: &Runs) -> Option<String> {
    command_of(&runs.first()?.0)
}

/// A command for the list, `None` written as such, as the two of a pair are.
pub fn or_none(command: Option<String>) -> String {
    command.unwrap_or_else(|| "None".to_owned())
}
