//! The book's harness: what its examples use to check and report on themselves, and what only
//! the contention benchmark and Part III's fault injection need. None of it is what a chapter
//! teaches; the readers' library, `esbook`, holds that.
//!
//! # Layout
//!
//! - [`run`]: an example's `main`: one line on error, a non-zero exit when a check failed, and
//!   one closing line naming the server when every check held.
//! - [`report`]: the checks an example makes of what it saw ([`Claims`], silent when they
//!   hold), and its machine-readable `RESULT {json}` line, printed only when `OCC_RESULTS=1`
//!   (as `cargo xtask examples` and `cargo xtask record` set it).
//! - [`cli`]: the examples' flags, with one-line errors.
//! - [`by_query`]: chapter 14's staging: the orders, a customer who edits some of them while a
//!   by-query job runs, and following the job's task so that the race happens every run.
//! - [`race`]: many clients incrementing at once, what they saw, how long it took and what CPU
//!   it cost (chapter 6's race and chapter 16's benchmark).
//! - [`nodes`]: Part III's cluster of several nodes, a client per node, and the node failures
//!   the failover chapters inject.
//! - [`pause`]: the paused primary's guard (never left paused), the race second by second for
//!   its chart, and Elasticsearch's refusals found in a node's log.
//! - [`recorded`]: what the book's tests read back: a recorded output, its results, and the
//!   numbers a chapter quotes from them.
//! - [`history`]: Part III's record of writes whose outcome may be unknown (a timeout is not
//!   "not applied"), and the checks that hold a counter to it.

pub mod by_query;
pub mod cli;
pub mod history;
pub mod nodes;
pub mod pause;
pub mod race;
pub mod recorded;
pub mod report;
pub mod run;

pub use report::Claims;
pub use run::{run_example, run_main};
