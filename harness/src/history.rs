//! A history of writes whose outcome may be unknown, and the checks that hold a counter to it.
//!
//! Until chapter 17 every example stops at the first network error, as if a request that failed
//! had not happened. Part III does not: it records every attempt at a write and what came back,
//! then compares the history with what the server holds at the end. Chapters 18 and 19 share
//! this, which is why it lives here rather than in one example.
//!
//! An attempt ends in one of four ways, and two of them do not say whether it was applied:
//!
//! | [`Outcome`] | what came back | applied? |
//! | --- | --- | --- |
//! | `Acknowledged` | a 2xx answer | yes |
//! | `Conflicted` | HTTP 409 `version_conflict_engine_exception` | not by this request, says the server |
//! | `NotSent` | the connection was refused: the request never left | no |
//! | `Indeterminate` | a timeout, a reset connection, a 5xx | unknown: maybe |
//!
//! A timeout is `Indeterminate`, never "not applied": the request may have reached the server,
//! been applied, and only its answer come too late (chapter 19 makes that happen on purpose).
//!
//! One more case makes even a 409 ambiguous. When the node holding a primary dies while a
//! write is on its way through it, the node that received the write from the client sends it
//! again to the newly promoted primary. If the dead primary had already replicated it, the new
//! primary has it, and the write's condition fails against the write itself: HTTP 409 for a
//! write that was applied. Chapter 18 catches Elasticsearch doing it. So an attempt that was in
//! flight when a node died is recorded as such ([`History::record_across_fault`]), and a 409
//! to it counts as "may have been applied".
//! A real service would keep such a history only in tests; in production the lesson is the
//! classification, and what to do with the third and fourth rows.
//!
//! Chapter 20 holds accounts to the transfers that were recorded the same way: [`Accounts`]
//! reads them back, [`expected_accounts`] says what they must hold.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error as _;

use anyhow::{Result, bail};
use elasticsearch::http::response::Response;
use serde_json::{Value, json};

/// Checks each condition into `claims` (a [`Claims`](crate::Claims)), naming a failed one by
/// its own source text: Part III's examples hold a run to a dozen facts at a time.
///
/// ```
/// let mut claims = harness::Claims::new();
/// let (read, written) = (1, 2);
/// harness::check_each!(claims;
///     read < written,
///     read + 1 == written,
/// );
/// assert_eq!(claims.checked(), 2);
/// assert!(claims.all_hold());
/// ```
#[macro_export]
macro_rules! check_each {
    ($claims:expr; $($holds:expr),+ $(,)?) => {
        $( $claims.check($holds, stringify!($holds)); )+
    };
}

/// What one attempt at a write came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A 2xx answer: applied. The body (`_seq_no`, `result`, ...), or `null` if it was cut off.
    Acknowledged(Value),
    /// HTTP 409 with `version_conflict_engine_exception`: the `error` object.
    Conflicted(Value),
    /// The request never left this machine (connection refused); what the client said.
    NotSent(String),
    /// The request may or may not have been applied; why we cannot tell.
    Indeterminate(String),
}

impl Outcome {
    /// `acknowledged`, `conflicted`, `not_sent` or `indeterminate`: the names in `RESULT` lines.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Acknowledged(_) => "acknowledged",
            Outcome::Conflicted(_) => "conflicted",
            Outcome::NotSent(_) => "not_sent",
            Outcome::Indeterminate(_) => "indeterminate",
        }
    }

    /// One line for a log: the kind, and the reason where there is one.
    pub fn brief(&self) -> String {
        match self {
            Outcome::Acknowledged(body) => format!(
                "acknowledged: result={} _seq_no={} _primary_term={}",
                body["result"].as_str().unwrap_or("?"),
                body["_seq_no"],
                body["_primary_term"]
            ),
            Outcome::Conflicted(error) => format!(
                "conflicted: {}",
                error["reason"].as_str().unwrap_or_default()
            ),
            Outcome::NotSent(why) => format!("not sent: {why}"),
            Outcome::Indeterminate(why) => format!("indeterminate: {why}"),
        }
    }
}

/// Classifies what `send()` returned for a write.
///
/// A refused connection is [`Outcome::NotSent`]; every other failure to get an answer, a
/// timeout above all, is [`Outcome::Indeterminate`]. Answers: 2xx is acknowledged, 409 with a
/// version conflict is conflicted, 429 and 5xx are indeterminate (the server may have done part
/// of the work), and any other 4xx is an error: the request itself is wrong, and sending it
/// again will not help.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use std::time::Duration;
/// use elasticsearch::IndexParts;
/// use elasticsearch::indices::IndicesPutSettingsParts;
/// use elasticsearch::params::Refresh;
/// use esbook::doc;
/// use harness::history::{self, Outcome};
/// use serde_json::json;
///
/// doc::fresh_index(client, "history-outcome").await?;
/// client.indices().put_settings(IndicesPutSettingsParts::Index(&["history-outcome"]))
///     .body(json!({ "index": { "refresh_interval": "-1" } })).send().await?;
/// // refresh=wait_for on an index that never refreshes: the write is applied, its answer
/// // never comes, and the client's deadline fires.
/// let sent = client
///     .index(IndexParts::IndexId("history-outcome", "1"))
///     .refresh(Refresh::WaitFor)
///     .request_timeout(Duration::from_millis(300))
///     .body(json!({ "n": 1 }))
///     .send()
///     .await;
/// let outcome = history::outcome(sent).await?;
/// assert!(matches!(outcome, Outcome::Indeterminate(_)), "{outcome:?}");
/// // ... and yet it was applied:
/// assert_eq!(doc::read(client, "history-outcome", "1").await?.number("n")?, 1);
/// # Ok(()) }
/// ```
pub async fn outcome(
    sent: Result<Response, elasticsearch::Error>,
) -> Result<Outcome> {
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Ok(unanswered(&error)),
    };
    let status = response.status_code().as_u16();
    let body: Value = match response.json().await {
        Ok(body) => body,
        // The status line arrived; the rest did not. A 2xx status is only sent once the
        // write is done, so it still counts as acknowledged.
        Err(_) if (200..300).contains(&status) => Value::Null,
        Err(error) => {
            return Ok(Outcome::Indeterminate(format!(
                "HTTP {status}, then the answer was cut off: {}",
                transport_reason(&error)
            )));
        }
    };
    Ok(match status {
        200..=299 => Outcome::Acknowledged(body),
        409 if body["error"]["type"] == "version_conflict_engine_exception" => {
            Outcome::Conflicted(body["error"].clone())
        }
        429 | 500..=599 => Outcome::Indeterminate(format!(
            "HTTP {status}: {}",
            esbook::doc::reason(&body)
        )),
        _ => bail!(
            "the write failed with HTTP {status}: {}",
            esbook::doc::reason(&body)
        ),
    })
}

/// The outcome of a request that got no answer at all.
fn unanswered(error: &elasticsearch::Error) -> Outcome {
    let reason = transport_reason(error);
    if error.is_timeout() {
        Outcome::Indeterminate(
            "timed out: no answer before the client's deadline".into(),
        )
    } else if never_sent(error) {
        Outcome::NotSent(reason)
    } else {
        Outcome::Indeterminate(reason)
    }
}

/// Whether the request failed while connecting, so it never reached the server.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// use harness::history::{never_sent, transport_reason};
///
/// // Nothing listens on port 1: the connection is refused, the request never leaves.
/// let (client, _) = esbook::client::client_for("http://127.0.0.1:1")?;
/// let error = client.ping().send().await.unwrap_err();
/// assert!(never_sent(&error));
/// assert!(transport_reason(&error).contains("refused"), "{}", transport_reason(&error));
/// # Ok(()) }
/// ```
pub fn never_sent(error: &elasticsearch::Error) -> bool {
    let mut cause = error.source();
    while let Some(error) = cause {
        if let Some(http) = error.downcast_ref::<reqwest::Error>() {
            return http.is_connect();
        }
        cause = error.source();
    }
    false
}

/// The innermost cause of a transport error ("Connection refused (os error 111)",
/// "connection closed before message completed"), without the URL the outer ones repeat.
/// See [`never_sent`].
pub fn transport_reason(error: &elasticsearch::Error) -> String {
    provision::progress::root_cause(error)
}

/// One attempt at a write, as a history records it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The operation it belongs to (an increment's id); several attempts may share one.
    pub op: String,
    /// The node it was sent to.
    pub node: String,
    pub outcome: Outcome,
    /// Whether it was sent before a node was killed and answered after: then even a 409 may
    /// answer a write that was applied (see the module's description).
    pub across_fault: bool,
}

impl Attempt {
    /// Whether this attempt may have been applied although its answer does not say so: it is
    /// indeterminate, or a 409 to a request that was in flight when a node died.
    pub fn maybe_applied(&self) -> bool {
        match self.outcome {
            Outcome::Indeterminate(_) => true,
            Outcome::Conflicted(_) => self.across_fault,
            Outcome::Acknowledged(_) | Outcome::NotSent(_) => false,
        }
    }
}

/// Every attempt of a run, in the order each client made them. Each client keeps its own and
/// they are [`History::merge`]d at the end, so recording needs no lock.
///
/// ```
/// use harness::history::{History, Outcome};
/// use serde_json::json;
///
/// let mut first = History::new();
/// first.record("c0-1", "node-1", &Outcome::Acknowledged(json!({})));
/// let mut second = History::new();
/// second.record("c1-1", "node-3", &Outcome::Indeterminate("connection reset".into()));
/// second.record("c1-2", "node-1", &Outcome::NotSent("connection refused".into()));
/// first.merge(second);
/// let counts = first.counts();
/// assert_eq!((counts.acknowledged, counts.indeterminate, counts.not_sent), (1, 1, 1));
/// let unknown: Vec<_> = first.indeterminate().map(|a| a.op.as_str()).collect();
/// assert_eq!(unknown, ["c1-1"]);
/// assert_eq!(first.attempts()[2].outcome.kind(), "not_sent");
/// assert!(first.attempts()[1].maybe_applied() && !first.attempts()[2].maybe_applied());
/// ```
#[derive(Debug, Clone, Default)]
pub struct History {
    attempts: Vec<Attempt>,
}

/// How many attempts ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub acknowledged: u64,
    pub conflicted: u64,
    /// Of the conflicted, those in flight when a node died: they may have been applied.
    pub conflicted_across_fault: u64,
    pub not_sent: u64,
    pub indeterminate: u64,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Records one attempt of operation `op`, sent to `node`.
    pub fn record(&mut self, op: &str, node: &str, outcome: &Outcome) {
        self.record_across_fault(op, node, outcome, false);
    }

    /// Records one attempt of operation `op`, sent to `node`, saying whether a node was killed
    /// while it was in flight.
    pub fn record_across_fault(
        &mut self,
        op: &str,
        node: &str,
        outcome: &Outcome,
        across_fault: bool,
    ) {
        self.attempts.push(Attempt {
            op: op.to_string(),
            node: node.to_string(),
            outcome: outcome.clone(),
            across_fault,
        });
    }

    /// Appends another client's history.
    pub fn merge(&mut self, other: History) {
        self.attempts.extend(other.attempts);
    }

    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The attempts by outcome.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for attempt in &self.attempts {
            match attempt.outcome {
                Outcome::Acknowledged(_) => counts.acknowledged += 1,
                Outcome::Conflicted(_) => {
                    counts.conflicted += 1;
                    if attempt.across_fault {
                        counts.conflicted_across_fault += 1;
                    }
                }
                Outcome::NotSent(_) => counts.not_sent += 1,
                Outcome::Indeterminate(_) => counts.indeterminate += 1,
            }
        }
        counts
    }

    /// How many operations (distinct `op`s) the attempts were made for.
    pub fn operations(&self) -> usize {
        let ops: BTreeSet<&str> =
            self.attempts.iter().map(|a| a.op.as_str()).collect();
        ops.len()
    }

    /// The indeterminate attempts, for showing a few.
    pub fn indeterminate(&self) -> impl Iterator<Item = &Attempt> {
        self.attempts
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Indeterminate(_)))
    }
}

impl std::fmt::Display for Counts {
    /// `acknowledged=3 indeterminate=3`, with `conflicted=` and `not_sent=` when not zero.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "acknowledged={} indeterminate={}",
            self.acknowledged, self.indeterminate
        )?;
        for (name, n) in
            [("conflicted", self.conflicted), ("not_sent", self.not_sent)]
        {
            if n > 0 {
                write!(f, " {name}={n}")?;
            }
        }
        Ok(())
    }
}

/// A run of increments of one counter document (`{"counter": n, "ops": [ids]}`), as a
/// `RESULT` line gives it: attempts, acknowledged, indeterminate, the final counter, and
/// whether it matches the ids the document lists one for one ([`check_ids`]).
///
/// ```
/// use harness::history::{History, Outcome, counter_run};
/// use serde_json::json;
///
/// let mut history = History::new();
/// history.record("inc-1", "node-1", &Outcome::Indeterminate("timed out".into()));
/// history.record("inc-1", "node-1", &Outcome::Acknowledged(json!({ "result": "noop" })));
/// let run = counter_run(&history, &json!({ "counter": 1, "ops": ["inc-1"] }));
/// assert_eq!(run, json!({ "attempts": 2, "acknowledged": 1, "indeterminate": 1,
///                         "final": 1, "exact_ids": true }));
/// ```
pub fn counter_run(history: &History, document: &Value) -> Value {
    let ops: Vec<String> = document["ops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|op| op.as_str().map(str::to_string))
        .collect();
    let count = document["counter"].as_u64().unwrap_or_default();
    let counts = history.counts();
    json!({
        "attempts": history.attempts().len(),
        "acknowledged": counts.acknowledged,
        "indeterminate": counts.indeterminate,
        "final": count,
        "exact_ids": check_ids(history, count, &ops).holds(),
    })
}

/// What a counter of plain increments may end at, given the history: at least one per
/// acknowledged attempt (each was applied), at most that plus one per attempt that may have
/// been applied ([`Attempt::maybe_applied`]: indeterminate, or a 409 in flight when a node
/// died). Other conflicted and unsent attempts add nothing.
///
/// ```
/// use harness::history::{History, Outcome, counter_bounds};
/// use serde_json::json;
///
/// let mut history = History::new();
/// history.record("c1-1", "node-1", &Outcome::Acknowledged(json!({})));
/// history.record("c1-2", "node-1", &Outcome::Conflicted(json!({})));
/// history.record("c1-2", "node-1", &Outcome::Indeterminate("timed out".into()));
/// let bounds = counter_bounds(&history);
/// assert_eq!((bounds.low, bounds.high), (1, 2));
/// assert!(bounds.check(1).holds() && bounds.check(2).holds());
/// assert_eq!(bounds.check(0).lost, 1); // an acknowledged increment is missing
/// assert_eq!(bounds.check(3).unexplained, 1); // one more than anything could explain
///
/// // A 409 to a request in flight when a node died may answer an applied write.
/// history.record_across_fault("c1-3", "node-2", &Outcome::Conflicted(json!({})), true);
/// assert_eq!(counter_bounds(&history).high, 3);
/// ```
pub fn counter_bounds(history: &History) -> Bounds {
    let counts = history.counts();
    let maybe = history
        .attempts()
        .iter()
        .filter(|a| a.maybe_applied())
        .count();
    Bounds {
        low: counts.acknowledged,
        high: counts.acknowledged + maybe as u64,
    }
}

/// The range a final counter must lie in: see [`counter_bounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub low: u64,
    pub high: u64,
}

impl Bounds {
    /// Holds `final_count` to the bounds.
    pub fn check(&self, final_count: u64) -> CounterCheck {
        CounterCheck {
            final_count,
            bounds: *self,
            lost: self.low.saturating_sub(final_count),
            unexplained: final_count.saturating_sub(self.high),
        }
    }
}

/// A final counter held to its [`Bounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterCheck {
    pub final_count: u64,
    pub bounds: Bounds,
    /// Acknowledged increments the counter does not hold: lost writes.
    pub lost: u64,
    /// Increments the counter holds that no acknowledged or indeterminate attempt explains.
    pub unexplained: u64,
}

impl CounterCheck {
    /// `acknowledged <= final <= acknowledged + indeterminate`.
    pub fn holds(&self) -> bool {
        self.lost == 0 && self.unexplained == 0
    }
}

/// Holds a counter of idempotent increments to the history: the document lists the id of every
/// increment it applied, so the check is exact. See [`IdCheck`].
///
/// ```
/// use harness::history::{History, Outcome, check_ids};
/// use serde_json::json;
///
/// let mut history = History::new();
/// history.record("c1-1", "node-1", &Outcome::Acknowledged(json!({})));
/// history.record("c1-2", "node-1", &Outcome::Indeterminate("timed out".into()));
/// // The document: counter 2, and the ids it applied (c1-2 had landed after all).
/// let check = check_ids(&history, 2, &["c1-1".into(), "c1-2".into()]);
/// assert!(check.holds());
/// assert_eq!(check.distinct, 2);
/// assert_eq!(check.landed_unacknowledged, ["c1-2"]);
/// ```
pub fn check_ids(
    history: &History,
    final_count: u64,
    applied: &[String],
) -> IdCheck {
    let mut seen = BTreeSet::new();
    let duplicates: Vec<String> = applied
        .iter()
        .filter(|id| !seen.insert(id.as_str()))
        .cloned()
        .collect();
    let mut by_op: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for attempt in history.attempts() {
        by_op
            .entry(attempt.op.as_str())
            .or_default()
            .push(&attempt.outcome);
    }
    let acknowledged = |outcomes: &[&Outcome]| {
        outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Acknowledged(_)))
    };
    let missing: Vec<String> = by_op
        .iter()
        .filter(|(op, outcomes)| acknowledged(outcomes) && !seen.contains(*op))
        .map(|(op, _)| op.to_string())
        .collect();
    let landed_unacknowledged: Vec<String> = seen
        .iter()
        .filter(|op| !by_op.get(*op).is_some_and(|o| acknowledged(o)))
        .map(|op| op.to_string())
        .collect();
    // An increment that landed although none of its attempts was acknowledged or
    // indeterminate: every answer it got said "not applied".
    let denied_but_applied: Vec<String> = landed_unacknowledged
        .iter()
        .filter(|op| {
            by_op.get(op.as_str()).is_none_or(|outcomes| {
                !outcomes
                    .iter()
                    .any(|o| matches!(o, Outcome::Indeterminate(_)))
            })
        })
        .cloned()
        .collect();
    // ... and of those, the ones a 409 answered while a node died.
    let denied_across_fault = denied_but_applied
        .iter()
        .filter(|op| {
            history.attempts().iter().any(|a| {
                &a.op == *op
                    && a.across_fault
                    && matches!(a.outcome, Outcome::Conflicted(_))
            })
        })
        .count();
    IdCheck {
        final_count,
        distinct: seen.len() as u64,
        duplicates,
        missing,
        landed_unacknowledged,
        denied_but_applied,
        denied_across_fault,
    }
}

/// A counter of idempotent increments held to its history by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdCheck {
    pub final_count: u64,
    /// How many distinct increment ids the document lists.
    pub distinct: u64,
    /// Ids the document lists more than once: an increment applied twice.
    pub duplicates: Vec<String>,
    /// Increments acknowledged to their client that the document does not list: lost.
    pub missing: Vec<String>,
    /// Increments the document lists that no attempt saw acknowledged (their client learnt
    /// the outcome by reading the document again).
    pub landed_unacknowledged: Vec<String>,
    /// Of those, the ones whose every attempt was answered "conflict" or never sent.
    pub denied_but_applied: Vec<String>,
    /// How many of `denied_but_applied` got a 409 to a request in flight when a node died.
    pub denied_across_fault: usize,
}

impl IdCheck {
    /// `final == distinct increments applied`, none twice, none acknowledged and missing.
    pub fn holds(&self) -> bool {
        self.final_count == self.distinct
            && self.duplicates.is_empty()
            && self.missing.is_empty()
    }

    /// The numbers, for a `RESULT` line.
    pub fn fields(&self) -> Value {
        json!({
            "final": self.final_count,
            "distinct_applied": self.distinct,
            "applied_twice": self.duplicates.len(),
            "lost_acknowledged": self.missing.len(),
            "landed_unacknowledged": self.landed_unacknowledged.len(),
            "denied_but_applied": self.denied_but_applied.len(),
            "denied_across_fault": self.denied_across_fault,
        })
    }
}

/// Chapter 18's plain counter held to its history ([`counter_bounds`]): the check, the lines
/// a person reads, and the counter's `RESULT` fields.
///
/// ```
/// use harness::history::{History, Outcome, plain_report};
/// use serde_json::json;
///
/// let mut history = History::new();
/// history.record("c0-1", "node-1", &Outcome::Acknowledged(json!({})));
/// history.record("c0-2", "node-3", &Outcome::Indeterminate("timed out".into()));
/// let (check, lines, fields) = plain_report(&history, 2);
/// assert!(check.holds());
/// assert!(lines[0].ends_with("-> 1 <= 2 <= 2"), "{}", lines[0]);
/// assert_eq!((fields["increments"].as_u64(), fields["held"].as_bool()), (Some(2), Some(true)));
/// ```
pub fn plain_report(
    history: &History,
    final_count: u64,
) -> (CounterCheck, Vec<String>, Value) {
    let check = counter_bounds(history).check(final_count);
    let c = history.counts();
    let mut lines = vec![format!(
        "plain:      final={final_count} acknowledged={} conflicted={} ({} in flight at the \
         kill) not_sent={} indeterminate={} -> {} <= {final_count} <= {}",
        c.acknowledged,
        c.conflicted,
        c.conflicted_across_fault,
        c.not_sent,
        c.indeterminate,
        check.bounds.low,
        check.bounds.high
    )];
    let twice = final_count.saturating_sub(c.acknowledged + c.indeterminate);
    if twice > 0 {
        lines.push(format!(
            "  plain: {twice} more than acknowledged + indeterminate: a 409 answered a write \
             that had been applied, and its client applied it again"
        ));
    }
    let fields = json!({
        "increments": history.operations(),
        "acknowledged": c.acknowledged,
        "conflicted": c.conflicted,
        "conflicted_in_flight_at_kill": c.conflicted_across_fault,
        "not_sent": c.not_sent,
        "indeterminate": c.indeterminate,
        "final": final_count,
        "lost_acknowledged": check.lost,
        "counted_twice": twice,
        "unexplained": check.unexplained,
        "held": check.holds(),
    });
    (check, lines, fields)
}

/// Chapter 18's idempotent counter, the document `{"counter": n, "ops": [ids]}`, held to its
/// history ([`check_ids`]): the check, the lines a person reads (with every increment applied
/// although no answer said so, and its attempts), and the counter's `RESULT` fields.
pub fn idempotent_report(
    history: &History,
    document: &Value,
) -> (IdCheck, Vec<String>, Value) {
    ids_report("idempotent", history, document)
}

/// [`idempotent_report`] for any counter whose document lists the id of every increment it
/// applied, its lines headed `label`: also a counter whose script lists an id again when it is
/// applied again (chapter 18's server-side increments), where an id listed twice shows an
/// increment applied twice, and a line per such id with its attempts.
///
/// ```
/// use harness::history::{History, Outcome, ids_report};
/// use serde_json::json;
///
/// let mut history = History::new();
/// history.record("c0-1", "node-1", &Outcome::Acknowledged(json!({})));
/// history.record("c0-2", "node-2", &Outcome::Indeterminate("timed out".into()));
/// let document = json!({ "counter": 3, "ops": ["c0-1", "c0-2", "c0-2"] });
/// let (check, lines, fields) = ids_report("plain_server", &history, &document);
/// assert_eq!((check.distinct, check.duplicates.len()), (2, 1));
/// assert!(lines[0].starts_with("plain_server: final=3"), "{}", lines[0]);
/// assert!(lines[1].contains("c0-2 was applied 2 times"), "{}", lines[1]);
/// assert_eq!((fields["applied_twice"].as_u64(), fields["listed"].as_u64()), (Some(1), Some(3)));
/// ```
pub fn ids_report(
    label: &str,
    history: &History,
    document: &Value,
) -> (IdCheck, Vec<String>, Value) {
    let applied: Vec<String> = document["ops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| id.as_str().map(str::to_string))
        .collect();
    let final_count = document["counter"].as_u64().unwrap_or_default();
    let check = check_ids(history, final_count, &applied);
    let c = history.counts();
    let mut lines = vec![format!(
        "{label}: final={final_count} distinct ids={} acknowledged={} conflicted={} ({} in \
         flight at the kill) not_sent={} indeterminate={}; landed unacknowledged={}, applied \
         twice={}, lost={}",
        check.distinct,
        c.acknowledged,
        c.conflicted,
        c.conflicted_across_fault,
        c.not_sent,
        c.indeterminate,
        check.landed_unacknowledged.len(),
        check.duplicates.len(),
        check.missing.len()
    )];
    let mut twice: Vec<&String> = check.duplicates.iter().collect();
    twice.sort();
    twice.dedup();
    let explained = twice.iter().map(|op| {
        let times = applied.iter().filter(|id| id == op).count();
        (*op, format!("  {op} was applied {times} times:"))
    });
    let denied = check.denied_but_applied.iter().map(|op| {
        (
            op,
            format!("  {op} was applied although no answer said so:"),
        )
    });
    for (op, line) in explained.chain(denied) {
        lines.push(line);
        for attempt in history.attempts().iter().filter(|a| &a.op == op) {
            let when = if attempt.across_fault {
                ", in flight at the kill"
            } else {
                ""
            };
            lines.push(format!(
                "    via {}{when}: {}",
                attempt.node,
                attempt.outcome.brief()
            ));
        }
    }
    let mut fields = check.fields();
    fields["increments"] = json!(history.operations());
    fields["acknowledged"] = json!(c.acknowledged);
    fields["indeterminate"] = json!(c.indeterminate);
    fields["listed"] = json!(applied.len());
    fields["held"] = json!(check.holds());
    (check, lines, fields)
}

/// At most `limit` indeterminate attempts of `histories`, one line each.
pub fn indeterminate_lines(histories: &[&History], limit: usize) -> Vec<String> {
    histories
        .iter()
        .flat_map(|h| h.indeterminate())
        .take(limit)
        .map(|a| {
            format!(
                "  indeterminate: {} on {}: {}",
                a.op,
                a.node,
                a.outcome.brief()
            )
        })
        .collect()
}

/// The sums over several runs of chapter 18's race, from each run's `RESULT` fields (with
/// its `plain` and `idempotent` counters), as the last `RESULT` line of `--runs R` gives them.
///
/// ```
/// use harness::history::sum_failover_runs;
/// use serde_json::json;
///
/// let run = json!({
///     "plain": { "acknowledged": 10, "indeterminate": 1, "increments": 11, "counted_twice": 1 },
///     "idempotent": { "acknowledged": 9, "indeterminate": 0, "increments": 9 },
/// });
/// let sums = sum_failover_runs(&[run.clone(), run]);
/// assert_eq!((sums["runs"].as_u64(), sums["increments"].as_u64()), (Some(2), Some(40)));
/// assert_eq!(sums["plain_counted_twice"], 2);
/// ```
pub fn sum_failover_runs(runs: &[Value]) -> Value {
    let sum = |counters: &[&str], field: &str| -> u64 {
        runs.iter()
            .flat_map(|run| {
                counters
                    .iter()
                    .map(move |c| run[*c][field].as_u64().unwrap_or(0))
            })
            .sum()
    };
    let both = ["plain", "idempotent"];
    json!({
        "example": "failover_race",
        "runs": runs.len(),
        "increments": sum(&both, "increments"),
        "acknowledged": sum(&both, "acknowledged"),
        "indeterminate": sum(&both, "indeterminate"),
        "lost_acknowledged": sum(&both, "lost_acknowledged"),
        "plain_counted_twice": sum(&["plain"], "counted_twice"),
        "unexplained": sum(&["plain"], "unexplained"),
        "applied_twice": sum(&["idempotent"], "applied_twice"),
        "denied_but_applied": sum(&["idempotent"], "denied_but_applied"),
    })
}

/// The sums of [`sum_failover_runs`] in one line for a person.
pub fn sums_line(sums: &Value) -> String {
    format!(
        "{} increments, {} acknowledged, {} indeterminate; lost acknowledged {}; plain \
         counted twice {} (unexplained {}); idempotent applied twice {}, applied despite a \
         409 {}",
        sums["increments"],
        sums["acknowledged"],
        sums["indeterminate"],
        sums["lost_acknowledged"],
        sums["plain_counted_twice"],
        sums["unexplained"],
        sums["applied_twice"],
        sums["denied_but_applied"]
    )
}

/// Chapter 20's accounts: each one's balance and the ids of the transfers it lists as applied
/// (sorted), by name.
pub type Accounts = BTreeMap<String, (i64, Vec<String>)>;

/// Reads those of the accounts `names` that exist in `index` (realtime GETs), each a document
/// `{"balance": 900, "applied": ["t-1"]}`.
pub async fn read_accounts(
    client: &elasticsearch::Elasticsearch,
    index: &str,
    names: &[&str],
) -> Result<Accounts> {
    let mut found = Accounts::new();
    for name in names {
        if let Some(account) = esbook::doc::find(client, index, name).await? {
            let mut ids: Vec<String> = account.source["applied"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect();
            ids.sort();
            found.insert(name.to_string(), (account.number("balance")?, ids));
        }
    }
    Ok(found)
}

/// The sum of the balances.
pub fn total(accounts: &Accounts) -> i64 {
    accounts.values().map(|(balance, _)| balance).sum()
}

/// The balances in one line for a person: `alice 900, bob 1000 (total 1900)`.
///
/// ```
/// use harness::history::{Accounts, show_accounts};
///
/// let accounts = Accounts::from([("alice".into(), (900, vec![])), ("bob".into(), (1000, vec![]))]);
/// assert_eq!(show_accounts(&accounts), "alice 900, bob 1000 (total 1900)");
/// ```
pub fn show_accounts(accounts: &Accounts) -> String {
    let shown: Vec<String> = accounts
        .iter()
        .map(|(name, (balance, _))| format!("{name} {balance}"))
        .collect();
    format!("{} (total {})", shown.join(", "), total(accounts))
}

/// What accounts `names`, opened at `opening`, hold once each transfer `(id, from, to,
/// amount)` was applied exactly once: the balances moved, and each id listed by both sides.
///
/// ```
/// use harness::history::expected_accounts;
///
/// let after = expected_accounts(&["alice", "bob"], 1000, &[("t-1", "alice", "bob", 100)]);
/// assert_eq!(after["alice"], (900, vec!["t-1".to_string()]));
/// assert_eq!(after["bob"], (1100, vec!["t-1".to_string()]));
/// ```
pub fn expected_accounts(
    names: &[&str],
    opening: i64,
    transfers: &[(&str, &str, &str, i64)],
) -> Accounts {
    let mut accounts: Accounts = names
        .iter()
        .map(|name| (name.to_string(), (opening, vec![])))
        .collect();
    for (id, from, to, amount) in transfers {
        for (name, delta) in [(from, -amount), (to, *amount)] {
            let (balance, ids) = accounts.entry(name.to_string()).or_default();
            *balance += delta;
            ids.push(id.to_string());
        }
    }
    accounts.values_mut().for_each(|(_, ids)| ids.sort());
    accounts
}
