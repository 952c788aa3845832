//! What chapter 18's paused primary needs around [`Nodes::pause`]: a guard that never leaves a
//! node paused ([`Paused`]), the race's writes second by second ([`Timeline`], drawn by
//! `cargo xtask charts`), and Elasticsearch's own words from a node's log ([`refusals`]).

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use regex::Regex;
use serde_json::{Value, json};

use crate::history::{self, History, Outcome};
use crate::nodes::{self, FaultWatch, Node, Nodes};

/// A paused node, resumed when this is dropped if [`Paused::resume`] was not called (an error
/// path): a paused node must never outlive the example that paused it.
pub struct Paused<'a> {
    cluster: &'a Nodes,
    /// The paused node's name.
    pub name: String,
    resumed: bool,
}

impl<'a> Paused<'a> {
    /// Pauses node `name` of `cluster` ([`Nodes::pause`]).
    pub async fn pause(cluster: &'a Nodes, name: &str) -> Result<Paused<'a>> {
        cluster.pause(name).await?;
        Ok(Paused {
            cluster,
            name: name.to_string(),
            resumed: false,
        })
    }

    /// Lets the node run again ([`Nodes::resume`]).
    pub async fn resume(mut self) -> Result<()> {
        self.resumed = true;
        self.cluster.resume(&self.name).await
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        if !self.resumed {
            self.cluster.resume_at_once(&self.name);
        }
    }
}

/// A race's acknowledged and conflicted writes in one-second buckets, with the moments of
/// its faults marked, and the longest time without an acknowledgement (the stall).
pub struct Timeline {
    started: Instant,
    inner: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    /// `[acknowledged, conflicted]` per second since the start.
    seconds: Vec<[u64; 2]>,
    marks: Vec<(f64, String)>,
    last_ack: Option<Duration>,
    /// The longest gap between two acknowledgements: `(from, length)`.
    stall: (Duration, Duration),
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            started: Instant::now(),
            inner: Mutex::new(Buckets::default()),
        }
    }

    /// Time since the race began.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn count(&self, which: usize) -> Duration {
        let at = self.now();
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let second = at.as_secs() as usize;
        if b.seconds.len() <= second {
            b.seconds.resize(second + 1, [0, 0]);
        }
        b.seconds[second][which] += 1;
        at
    }

    /// A write was acknowledged now.
    pub fn acknowledged(&self) {
        let at = self.count(0);
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Clients race to this lock: an earlier `at` can arrive after a later one.
        if let Some(last) = b.last_ack
            && at.saturating_sub(last) > b.stall.1
        {
            b.stall = (last, at - last);
        }
        b.last_ack = Some(b.last_ack.map_or(at, |last| last.max(at)));
    }

    /// A conditional write was refused with a 409 now.
    pub fn conflicted(&self) {
        self.count(1);
    }

    /// Marks a moment (`"pause node-2"`); the time since the start.
    pub fn mark(&self, what: impl Into<String>) -> Duration {
        let at = self.now();
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        b.marks.push((at.as_secs_f64(), what.into()));
        at
    }

    /// The longest time without an acknowledged write: when it began (since the start), and
    /// how long it lasted.
    pub fn stall(&self) -> (Duration, Duration) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).stall
    }

    /// The buckets and marks as JSON, for `src/data/` and the chart:
    /// `{"seconds": [{"second": 0, "acknowledged": 41, "conflicted": 12}, ...],
    ///   "marks": [{"at_s": 2.0, "what": "pause node-2"}, ...]}`.
    pub fn to_json(&self) -> Value {
        let b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let seconds: Vec<Value> = b
            .seconds
            .iter()
            .enumerate()
            .map(|(s, [a, c])| json!({ "second": s, "acknowledged": a, "conflicted": c }))
            .collect();
        let marks: Vec<Value> = b
            .marks
            .iter()
            .map(|(at, what)| json!({ "at_s": (at * 10.0).round() / 10.0, "what": what }))
            .collect();
        json!({ "seconds": seconds, "marks": marks })
    }
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline::new()
    }
}

/// What Elasticsearch says when a primary that was replaced acts in its old term, found in
/// `log` (a node's log, plain text or the container image's JSON lines), each phrase once, in
/// this order: the old primary's write failing on a replica, the replica's reason (an
/// operation of the old term, refused by `IndexShard`), the master
/// refusing the old primary's request to fail that replica (`ShardStateAction`), and the old
/// primary failing itself (`ReplicationOperation`).
///
/// ```
/// let log = "[WARN ] ... NoLongerPrimaryShardException: primary term [1] did not match \
///            current primary term [2] ... operation primary term [1] is too old (current [2])";
/// assert_eq!(
///     harness::pause::refusals(log),
///     [
///         "operation primary term [1] is too old (current [2])",
///         "primary term [1] did not match current primary term [2]",
///     ]
/// );
/// ```
pub fn refusals(log: &str) -> Vec<String> {
    let patterns = [
        r"failed to perform indices:data/write/bulk\[s\] on replica",
        r"operation primary term \[\d+\] is too old \(current \[\d+\]\)",
        r"primary term \[\d+\] did not match current primary term \[\d+\]",
        r"was demoted while failing replica shard",
    ];
    patterns
        .iter()
        .filter_map(|p| {
            let found = Regex::new(p).ok()?.find(log)?;
            Some(found.as_str().to_string())
        })
        .collect()
}

/// How far each node's log went when it was taken, so that [`LogMarks::refusals`] reads only
/// what was logged since (a node's log holds every earlier run's lines too).
pub struct LogMarks(Vec<(String, usize)>);

impl LogMarks {
    /// Each node's log length now ([`Nodes::log`]; an unreadable log counts as empty).
    pub async fn take(cluster: &Nodes) -> LogMarks {
        let mut marks = Vec::new();
        for node in &cluster.nodes {
            let log = cluster.log(&node.name).await.unwrap_or_default();
            marks.push((node.name.clone(), log.len()));
        }
        LogMarks(marks)
    }

    /// The [`refusals`] each node logged since the marks were taken: `(node, words)`.
    pub async fn refusals(&self, cluster: &Nodes) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (name, mark) in &self.0 {
            let log = cluster.log(name).await.unwrap_or_default();
            // From the first character at or after the mark (a log read mid-write may end
            // inside one).
            let start = (*mark..=log.len()).find(|&i| log.is_char_boundary(i));
            let since = start.map_or("", |start| &log[start..]);
            found.extend(
                refusals(since).into_iter().map(|said| (name.clone(), said)),
            );
        }
        found
    }
}

/// The second fault of the paused primary's chart: kills the node that holds `index`'s
/// primary ([`Nodes::kill`]) while the race of `watch` runs, waits for a new primary, starts
/// the node again and waits until `index` is green, marking each moment on `timeline`. Says
/// what happened in one line; the killed node's name.
pub async fn kill_and_restart(
    cluster: &Nodes,
    index: &str,
    watch: &FaultWatch,
    timeline: &Timeline,
) -> Result<String> {
    let first = &cluster.nodes[0].client;
    let victim = nodes::primary_node(first, index)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no started primary of {index}"))?;
    let killed_at = timeline.mark(format!("kill {victim}"));
    watch.fault_begun();
    cluster.kill(&victim).await?;
    let survivor = &cluster.other_than(&victim).client;
    let (promoted, _) =
        nodes::wait_for_new_primary(survivor, index, &victim).await?;
    watch.fault_over();
    let promoted_at = timeline.mark(format!("{promoted} primary"));
    let term = nodes::primary_term(survivor, index).await?;
    timeline.mark(format!("restart {victim}"));
    cluster.restart(&victim).await?;
    nodes::wait_for_green(survivor, index).await?;
    let green_at = timeline.mark("green");
    println!(
        "killed {victim} ({}): {promoted} primary after {:.1}s, term {term}; {victim} back \
         and the index green {:.1}s after the kill",
        cluster.how_killed(),
        (promoted_at - killed_at).as_secs_f64(),
        (green_at - killed_at).as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(victim)
}

/// Chapter 18.1's fault, step by step: the node holding a primary paused
/// ([`PausedPrimary::pause`]), removed and replaced ([`PausedPrimary::wait_for_promotion`]),
/// resumed ([`PausedPrimary::resume`]) and back as a replica ([`PausedPrimary::rejoined`]).
/// Each step marks the timeline and says what happened in a line; [`PausedPrimary::fields`]
/// are the run's numbers. Dropped before it was resumed, it resumes the node.
pub struct PausedPrimary<'a> {
    cluster: &'a Nodes,
    index: String,
    /// The paused node, and one that stays up.
    pub victim: String,
    pub live: Node,
    paused: Option<Paused<'a>>,
    marks: LogMarks,
    paused_at: Duration,
    fields: serde_json::Map<String, Value>,
}

impl<'a> PausedPrimary<'a> {
    /// Lets `race` run two seconds, then pauses `victim` (the node holding `index`'s
    /// primary).
    pub async fn pause(
        cluster: &'a Nodes,
        index: &str,
        victim: &str,
        race: &Race,
    ) -> Result<PausedPrimary<'a>> {
        let (watch, timeline) = (&race.watch, &race.timeline);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let live = cluster.other_than(victim).clone();
        let master = nodes::elected_master(&live.client).await?;
        let term_before = nodes::primary_term(&live.client, index).await?;
        let marks = LogMarks::take(cluster).await;
        let paused = Paused::pause(cluster, victim).await?;
        watch.fault_begun();
        let paused_at = timeline.mark(format!("pause {victim}"));
        let mut fields = serde_json::Map::new();
        fields.insert("paused".into(), json!(victim));
        fields.insert("paused_was_master".into(), json!(master == victim));
        fields.insert("term_before".into(), json!(term_before));
        Ok(PausedPrimary {
            cluster,
            index: index.to_string(),
            victim: victim.to_string(),
            live,
            paused: Some(paused),
            marks,
            paused_at,
            fields,
        })
    }

    /// A client of the paused node's own HTTP port: what is sent through it waits in the
    /// socket until the node runs again.
    pub fn paused_node(&self) -> Result<elasticsearch::Elasticsearch> {
        Ok(self.cluster.node(&self.victim)?.client.clone())
    }

    /// Waits until the others remove the silent node and promote a replica; the new primary's
    /// node. Says when, and in which term.
    pub async fn wait_for_promotion(&mut self, race: &Race) -> Result<String> {
        let (watch, timeline) = (&race.watch, &race.timeline);
        let (victim, index) = (&self.victim, &self.index);
        let left = self.cluster.wait_for_membership(victim, false).await?;
        let (promoted, _) =
            nodes::wait_for_new_primary(&self.live.client, index, victim).await?;
        watch.fault_over();
        let after = timeline.mark(format!("{promoted} primary")) - self.paused_at;
        let term = nodes::primary_term(&self.live.client, index).await?;
        let master = if self.fields["paused_was_master"] == true {
            ", the elected master too,"
        } else {
            ""
        };
        println!(
            "paused {victim}{master} ({}), the primary in term {}; it left the cluster after \
             {:.1}s, {promoted} primary after {:.1}s, term {term}",
            self.cluster.how_paused(),
            self.fields["term_before"],
            left.as_secs_f64(),
            after.as_secs_f64()
        );
        self.fields
            .insert("left_ms".into(), json!(left.as_millis() as u64));
        self.fields
            .insert("promoted_ms".into(), json!(after.as_millis() as u64));
        self.fields.insert("term_after".into(), json!(term));
        Ok(promoted)
    }

    /// Lets the paused node run again.
    pub async fn resume(&mut self, race: &Race) -> Result<()> {
        race.timeline.mark(format!("resume {}", self.victim));
        match self.paused.take() {
            Some(paused) => paused.resume().await,
            None => Ok(()),
        }
    }

    /// Waits until the resumed node is back and the index green; says where the copies are,
    /// what the nodes logged of the old primary's refused work, and how long the race went
    /// without an acknowledgement.
    pub async fn rejoined(&mut self, race: &Race) -> Result<()> {
        let timeline = &race.timeline;
        let (victim, index, live) = (&self.victim, &self.index, &self.live.client);
        self.cluster.wait_for_membership(victim, true).await?;
        nodes::wait_for_green(live, index).await?;
        println!("{}", nodes::copies_line(live, index).await?);
        let copies = nodes::shard_copies(live, index).await?;
        let rejoined = copies
            .iter()
            .any(|c| &c.node == victim && !c.primary && c.state == "STARTED");
        let mut refusals = self.marks.refusals(self.cluster).await;
        refusals.retain(|(node, _)| node == victim);
        for (node, said) in &refusals {
            println!("{node}'s log: \"{said}\"");
        }
        let (from, stall) = timeline.stall();
        let before = self.paused_at.as_secs_f64() - from.as_secs_f64();
        println!(
            "longest time without an acknowledged write: {:.1}s, from {before:.1}s before \
             the pause",
            stall.as_secs_f64()
        );
        let said: Vec<&String> = refusals.iter().map(|(_, said)| said).collect();
        self.fields
            .insert("rejoined_as_replica".into(), json!(rejoined));
        self.fields.insert("refusals".into(), json!(said));
        let logs_read = self.cluster.source != esbook::cluster::Source::Url;
        self.fields.insert("logs_read".into(), json!(logs_read));
        self.fields
            .insert("stall_ms".into(), json!(stall.as_millis() as u64));
        Ok(())
    }

    /// The run's numbers, as `RESULT` fields, with `example` and the fields of `more` (an
    /// object) added; printed as the run's `RESULT` line ([`crate::report::result`]).
    pub fn report(&self, example: &str, race: &Race, more: Value) -> Value {
        let mut fields = self.fields.clone();
        fields.insert("example".into(), json!(example));
        if let Value::Object(more) = more {
            fields.extend(more);
        }
        let fields = Value::Object(fields);
        let on = self.cluster.cluster(&self.live);
        crate::report::result(&on, race.timeline.now(), fields.clone())
    }
}

/// Writes a race's `timeline` ([`Timeline::to_json`]) to `path`, with the command that made
/// it and the server's version: what `cargo xtask charts` draws `timeline-paused.svg` from.
/// An empty `path` writes nothing.
pub fn write_timeline(path: &str, cluster: &Nodes, timeline: Value) -> Result<()> {
    if path.is_empty() {
        return Ok(());
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = json!({
        "what": "the race of examples/paused_primary.rs, second by second",
        "command": format!("cargo run --example paused_primary -- {}", args.join(" ")),
        "server_version": cluster.version,
        "timeline": timeline,
    });
    let text = serde_json::to_string_pretty(&data)? + "\n";
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("writing {path}: {e}"))
}

/// What the racing clients of the paused primary share: the [`FaultWatch`] (writes in flight,
/// faults begun and over, when to stop) and the [`Timeline`].
pub struct Race {
    pub watch: FaultWatch,
    pub timeline: Timeline,
}

impl Race {
    pub fn new(cluster: &Nodes) -> std::sync::Arc<Race> {
        std::sync::Arc::new(Race {
            watch: FaultWatch::new(cluster),
            timeline: Timeline::new(),
        })
    }

    /// Sends one write through node `node` (`request`, a request not yet sent), and records
    /// what came of it: in `history` as an attempt of increment `op`, with whether a fault
    /// began while it was in flight, and on the timeline. What came of it.
    pub async fn write(
        &self,
        history: &mut History,
        op: &str,
        node: &str,
        request: impl Future<
            Output = Result<
                elasticsearch::http::response::Response,
                elasticsearch::Error,
            >,
        >,
    ) -> Result<Outcome> {
        let in_flight = self.watch.sent(node);
        let sent = request.await;
        let across = self.watch.answered(in_flight);
        let outcome = history::outcome(sent).await?;
        history.record_across_fault(op, node, &outcome, across);
        match outcome {
            Outcome::Acknowledged(_) => self.timeline.acknowledged(),
            Outcome::Conflicted(_) => self.timeline.conflicted(),
            _ => {}
        }
        Ok(outcome)
    }
}

/// Makes `index` fresh with two replicas (three copies, green) and its primary on a node that
/// is not the elected master, writes `{"counter": 0}` to `counter` and `{"value": "old"}` to
/// each of `others`, and says which node holds the primary (the node to pause): its name and its
/// place in `cluster.nodes`.
///
/// The primary is kept off the master so that a pause stops one thing, the primary: a paused
/// master must first be replaced by an election before anyone removes it (a container run took
/// over 90 s, not 32), and its late writes found the new term already known when it woke.
pub async fn prepare(
    cluster: &Nodes,
    index: &str,
    counter: &str,
    others: &[&str],
) -> Result<(String, usize)> {
    let first = &cluster.nodes[0].client;
    let master = nodes::elected_master(first).await?;
    let home = cluster.nodes.iter().find(|n| n.name != master);
    let home = home.ok_or_else(|| anyhow::anyhow!("no node but the master"))?;
    // The only copy created on `home`, then unpinned: the replicas go to the other two.
    nodes::create_on(first, index, &home.name, json!({})).await?;
    nodes::unpin(first, index).await?;
    nodes::replicate(first, index, 2, "10s").await?;
    esbook::doc::put(first, index, counter, json!({ "counter": 0 })).await?;
    for id in others {
        esbook::doc::put(first, index, id, json!({ "value": "old" })).await?;
    }
    let primary = nodes::primary_node(first, index)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no started primary of {index}"))?;
    let at = cluster.nodes.iter().position(|n| n.name == primary);
    Ok((primary, at.unwrap_or(0)))
}

/// Ends the race of `race` after one more second (with `kill`, after a kill of the primary's
/// node first: [`kill_and_restart`]) and merges the clients' histories.
pub async fn finish(
    cluster: &Nodes,
    index: &str,
    race: &Race,
    kill: bool,
    mut clients: tokio::task::JoinSet<Result<History>>,
) -> Result<History> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    if kill {
        kill_and_restart(cluster, index, &race.watch, &race.timeline).await?;
    }
    race.watch.stop();
    let mut all = History::new();
    while let Some(joined) = clients.join_next().await {
        all.merge(joined.map_err(|e| anyhow::anyhow!("a client failed: {e}"))??);
    }
    Ok(all)
}

/// Prints `lines` (the counter held to its history) and each node's own copy of `ids`
/// ([`nodes::local_copies`]); whether the copies agree.
pub async fn print_copies(
    cluster: &Nodes,
    index: &str,
    ids: &[&str],
    lines: &[String],
) -> Result<bool> {
    let (copies, agree) = nodes::local_copies(cluster, index, ids).await?;
    for line in lines.iter().chain(&copies) {
        println!("{line}");
    }
    Ok(agree)
}
