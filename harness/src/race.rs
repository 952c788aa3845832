//! The machinery of chapter 6's lost-update race, shared by its example (`counter_race`),
//! chapter 10's race from no document (`upsert_race`) and the contention benchmark
//! (`benches/contention.rs`, chapter 16).
//!
//! N clients increment a counter M times each, all at once. [`run`] prepares a fresh index,
//! runs the clients, and returns what they saw ([`Tally`]), what the counter ended at, how long
//! each increment took and how much CPU this process spent on it.
//!
//! How one client increments is a [`Contender`]: the notebook's three (no OCC, OCC, a scripted
//! update) are the `Strategy` of `examples/counter_race.rs`, where chapter 6 shows them; the
//! sharded counter of chapter 15 is [`Sharded`]; another design plugs in by implementing the
//! trait, with its own way of preparing the index and of reading the count back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::Elasticsearch;
use serde_json::{Value, json};

use esbook::counter::ShardedCounter;
use esbook::doc;
use esbook::retry::{Backoff, Tally};
use esbook::{Cluster, Needs};

use crate::cli::Args;
use crate::report::Claims;

/// The document every client of a contended race increments.
pub const DOC_ID: &str = "1";

/// The race's settings; the defaults are the notebook's.
///
/// ```
/// let race = harness::race::Race::default();
/// assert_eq!((race.clients, race.per_client, race.retry_on_conflict), (5, 50, 10));
/// assert_eq!(race.expected(), 250);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Race {
    pub clients: u32,
    pub per_client: u32,
    /// Client-side retry policy of the `occ` and `server` strategies.
    pub backoff: Backoff,
    /// `retry_on_conflict` of the `server` strategy (the notebook used 10).
    pub retry_on_conflict: u32,
    /// One document for all (the race), or one each (no contention at all: the ceiling).
    pub layout: Layout,
}

impl Default for Race {
    fn default() -> Race {
        Race {
            clients: 5,
            per_client: 50,
            backoff: Backoff::default(),
            retry_on_conflict: 10,
            layout: Layout::Shared,
        }
    }
}

impl Race {
    /// The flags [`Race::from_args`] reads, for a usage line.
    pub const FLAGS: &str =
        "[--clients N] [--per-client M] [--max-attempts K] [--retry-on-conflict R]";

    /// The race that `--clients`, `--per-client`, `--max-attempts` (client-side tries per
    /// increment) and `--retry-on-conflict` (the server's) ask for; the notebook's where absent.
    ///
    /// ```
    /// use harness::{cli::Args, race::Race};
    ///
    /// let given = ["--clients", "10", "--max-attempts=1"].map(String::from);
    /// let mut args = Args::parse(given)?;
    /// let race = Race::from_args(&mut args)?;
    /// assert_eq!((race.clients, race.per_client, race.backoff.max_attempts), (10, 50, 1));
    /// args.finish()?;
    /// # anyhow::Ok(())
    /// ```
    pub fn from_args(args: &mut Args) -> Result<Race> {
        let defaults = Race::default();
        Ok(Race {
            clients: args.number("clients", defaults.clients, 1..=100)?,
            per_client: args.number(
                "per-client",
                defaults.per_client,
                1..=10_000,
            )?,
            backoff: Backoff {
                max_attempts: args.number(
                    "max-attempts",
                    defaults.backoff.max_attempts,
                    1..=1000,
                )?,
                ..defaults.backoff
            },
            retry_on_conflict: args.number(
                "retry-on-conflict",
                defaults.retry_on_conflict,
                0..=100,
            )?,
            ..defaults
        })
    }

    /// The `--strategy` (`all`, or one of `strategies`) and the race that an example's
    /// command line asks for; `--help` prints a usage line naming `example`.
    pub fn from_env(example: &str, strategies: &[&str]) -> Result<(String, Race)> {
        let mut choices = vec!["all"];
        choices.extend_from_slice(strategies);
        let usage = format!(
            "usage: cargo run --example {example} -- [--strategy {}] {}",
            choices.join("|"),
            Race::FLAGS
        );
        let mut args = Args::from_env(&usage)?;
        let chosen = args.choice("strategy", "all", &choices)?;
        let race = Race::from_args(&mut args)?;
        args.finish()?;
        Ok((chosen, race))
    }

    /// The increments asked for: what the counter(s) should add up to.
    pub fn expected(&self) -> u64 {
        u64::from(self.clients) * u64::from(self.per_client)
    }
}

/// Which documents the clients increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every client increments [`DOC_ID`]: the race.
    Shared,
    /// Client `i` increments its own document `c{i}`: the same requests with nobody to race,
    /// which is what the server can do at best for them.
    PerClient,
}

impl Layout {
    /// The documents of a race with `clients` clients, each client's in turn.
    ///
    /// ```
    /// use harness::race::Layout;
    /// assert_eq!(Layout::Shared.ids(3), ["1", "1", "1"]);
    /// assert_eq!(Layout::PerClient.ids(3), ["c0", "c1", "c2"]);
    /// ```
    pub fn ids(self, clients: u32) -> Vec<String> {
        (0..clients)
            .map(|i| match self {
                Layout::Shared => DOC_ID.to_string(),
                Layout::PerClient => format!("c{i}"),
            })
            .collect()
    }
}

/// A boxed future, so that strategies can live side by side in one list.
pub type Step<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// One way of counting increments that many clients make at once.
///
/// `increment` is one client's increment; `prepare` and `count` default to one
/// `{"counter": N}` document per id, and a design that keeps its count elsewhere (several
/// documents, events to be counted, no document at first) overrides them. The notebook's three
/// are the `Strategy` of `examples/counter_race.rs`.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// use std::sync::Arc;
/// use elasticsearch::Elasticsearch;
/// use esbook::{Needs, doc};
/// use esbook::retry::Tally;
/// use harness::race::{self, Contender, Race, Step};
/// use serde_json::json;
///
/// /// Read, add one, write back: no condition.
/// struct Blind;
///
/// impl Contender for Blind {
///     fn name(&self) -> &str {
///         "blind"
///     }
///     fn needs(&self) -> Needs {
///         Needs::Core
///     }
///     fn increment<'a>(
///         &'a self,
///         client: &'a Elasticsearch,
///         index: &'a str,
///         id: &'a str,
///         _race: &'a Race,
///     ) -> Step<'a, Tally> {
///         Box::pin(async move {
///             let seen = doc::read(client, index, id).await?;
///             let next = seen.number("counter")? + 1;
///             Ok(Tally::written(&doc::put(client, index, id, json!({ "counter": next })).await?))
///         })
///     }
/// }
///
/// // One client has nobody to race: nothing is lost.
/// let race = Race { clients: 1, per_client: 5, ..Race::default() };
/// let run = race::run(&cluster, "race-contender", Arc::new(Blind), race).await?;
/// assert_eq!((run.counted, run.lost()), (5, 0));
/// # Ok(()) }
/// ```
pub trait Contender: Send + Sync {
    /// The name results and charts use.
    fn name(&self) -> &str;
    /// What it needs from the server: the core API unless it says otherwise.
    fn needs(&self) -> Needs {
        Needs::Core
    }
    /// One increment of document `id`, retried as the strategy retries.
    fn increment<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
        race: &'a Race,
    ) -> Step<'a, Tally>;
    /// A fresh `index` with each of `ids` at zero.
    fn prepare<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        ids: &'a [String],
    ) -> Step<'a, ()> {
        Box::pin(async move {
            doc::fresh_index(client, index).await?;
            for id in ids {
                doc::put(client, index, id, json!({ "counter": 0 })).await?;
            }
            Ok(())
        })
    }
    /// The count document `id` holds now.
    fn count<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
    ) -> Step<'a, u64> {
        Box::pin(async move {
            let seen = doc::read(client, index, id).await?;
            Ok(seen.number("counter")? as u64)
        })
    }
    /// Whether this strategy is expected to lose increments (only `none` is).
    fn loses_increments(&self) -> bool {
        false
    }
}

/// What a race gave.
#[derive(Debug, Clone)]
pub struct Run {
    /// What the clients saw, summed.
    pub total: Tally,
    /// What the counter(s) ended at, summed.
    pub counted: u64,
    /// The increments asked for.
    pub expected: u64,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// CPU time this process (all its threads) spent meanwhile: the client's cost.
    pub cpu: Duration,
    /// How long each increment took, retries included, in no particular order.
    pub latencies: Vec<Duration>,
}

impl Run {
    /// Increments acknowledged but not in the count: lost without a word.
    pub fn lost(&self) -> u64 {
        self.total.acknowledged.saturating_sub(self.counted)
    }

    /// The one line a person reads about `strategy`'s run: where the counter ended against
    /// what was expected, what the clients saw, how long it took and what CPU it cost.
    pub fn summary(&self, strategy: &str) -> String {
        format!(
            "{strategy}: counter={}, expected={}, acknowledged={}, conflicts={}, failed={} in {:.2}s, client CPU {:.2}s",
            self.counted,
            self.expected,
            self.total.acknowledged,
            self.total.conflicts,
            self.total.failed,
            self.elapsed.as_secs_f64(),
            self.cpu.as_secs_f64(),
        )
    }

    /// Version conflicts per increment asked for, rounded to two decimals.
    ///
    /// ```
    /// use std::time::Duration;
    /// use esbook::retry::Tally;
    /// use harness::race::Run;
    ///
    /// let total = Tally { acknowledged: 250, conflicts: 525, ..Tally::default() };
    /// let run = Run { total, counted: 250, expected: 250, elapsed: Duration::ZERO,
    ///                 cpu: Duration::ZERO, latencies: vec![] };
    /// assert_eq!(run.conflicts_per_increment(), 2.1);
    /// ```
    pub fn conflicts_per_increment(&self) -> f64 {
        let per = self.total.conflicts as f64 / self.expected.max(1) as f64;
        (per * 100.0).round() / 100.0
    }

    /// [`Run::summary`] for a race from no document (chapter 10), with the creations: how many
    /// writes created the counter, how many were meant to (their read found none), and how
    /// many 409s said the document already existed.
    pub fn summary_with_creations(&self, strategy: &str) -> String {
        let t = self.total;
        format!(
            "{strategy}: counter={}, expected={}, acknowledged={}, created={}, written_as_new={}, \
             conflicts={} (creation collisions {}), failed={} in {:.2}s",
            self.counted,
            self.expected,
            t.acknowledged,
            t.created,
            t.written_as_new,
            t.conflicts,
            t.create_conflicts,
            t.failed,
            self.elapsed.as_secs_f64(),
        )
    }

    /// The fields of the `RESULT` line of `strategy`'s run of `race` in `example`, which the
    /// benchmark, the container test and the book's tests read.
    pub fn result_fields(
        &self,
        example: &str,
        strategy: &dyn Contender,
        race: &Race,
    ) -> Value {
        let mut fields = json!({
            "example": example,
            "strategy": strategy.name(),
            "clients": race.clients,
            "per_client": race.per_client,
            "expected": self.expected,
            "final": self.counted,
            "acknowledged": self.total.acknowledged,
            "conflicts": self.total.conflicts,
            "failed": self.total.failed,
        });
        // The retry settings that shaped the run: the client's tries for every strategy that
        // retries, the server's `retry_on_conflict` for those that run scripts.
        if !strategy.loses_increments() {
            fields["max_attempts"] = json!(race.backoff.max_attempts);
        }
        if strategy.needs() == Needs::Scripting {
            fields["retry_on_conflict"] = json!(race.retry_on_conflict);
        }
        fields
    }

    /// What every race claims of its counter, checked into `claims`. A strategy that
    /// `loses_increments` has every write acknowledged and the counter below what was asked
    /// for (with more than one client; with one, nothing lost). Any other ends with the counter
    /// equal to the acknowledged increments, and every increment acknowledged or, with fewer
    /// client tries than the default, reported as given up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use esbook::retry::Tally;
    /// use harness::{Claims, race::{Race, Run}};
    ///
    /// let total = Tally { acknowledged: 250, ..Tally::default() };
    /// let run = Run { total, counted: 84, expected: 250, elapsed: Duration::ZERO,
    ///                 cpu: Duration::ZERO, latencies: vec![] };
    /// let mut claims = Claims::new();
    /// run.check("none", true, &Race::default(), &mut claims);
    /// assert!(claims.all_hold());
    /// run.check("occ", false, &Race::default(), &mut claims);
    /// assert!(!claims.all_hold());
    /// ```
    pub fn check(
        &self,
        name: &str,
        loses_increments: bool,
        race: &Race,
        claims: &mut Claims,
    ) {
        let (total, expected, counted) = (self.total, self.expected, self.counted);
        if loses_increments && race.clients > 1 {
            claims.check(
                total.acknowledged == expected,
                format!(
                    "{name}: every one of the {expected} writes was acknowledged"
                ),
            );
            claims.check(
                counted < expected,
                format!("{name}: increments were lost, the counter ({counted}) is below {expected}"),
            );
        } else if loses_increments {
            claims.check(
                counted == expected,
                format!(
                    "{name}: a single client has nobody to race, so nothing is lost"
                ),
            );
        } else {
            claims.check(
                counted == total.acknowledged,
                format!(
                    "{name}: the counter ({counted}) equals the acknowledged increments ({})",
                    total.acknowledged
                ),
            );
            // With fewer tries than the default, giving up is allowed (and counted); losing
            // is not.
            if race.backoff.max_attempts >= Race::default().backoff.max_attempts {
                claims.check(
                    total.acknowledged == expected,
                    format!(
                        "{name}: every increment landed, {expected} of {expected}"
                    ),
                );
            } else {
                claims.check(
                    total.acknowledged + total.failed == expected,
                    format!(
                        "{name}: every increment was acknowledged or reported as given up: {} + {} = {expected}",
                        total.acknowledged, total.failed
                    ),
                );
            }
        }
    }
}

/// Named runs side by side, one line each under a header: conflicts and wall time, each also as a ratio against the first
/// run's (`vs NAME`) (chapter 15 compares designs against the single hot document of the same run).
///
/// ```
/// use std::time::Duration;
/// use esbook::retry::Tally;
/// use harness::race::{self, Run};
///
/// let run = |conflicts, ms| Run {
///     total: Tally { acknowledged: 100, conflicts, ..Tally::default() },
///     counted: 100, expected: 100, elapsed: Duration::from_millis(ms),
///     cpu: Duration::ZERO, latencies: vec![],
/// };
/// let table = race::compare(&[("one", run(200, 800)), ("many", run(50, 200))]);
/// let lines: Vec<&str> = table.lines().collect();
/// assert!(lines[0].starts_with("design") && lines[0].ends_with("wall vs one"), "{table}");
/// assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(),
///            ["many", "50", "0.50", "0.25x", "200", "0.25x"]);
/// ```
pub fn compare(runs: &[(&str, Run)]) -> String {
    let Some((base, first)) = runs.first() else {
        return String::new();
    };
    let ratio = |of: f64, to: f64| {
        if to == 0.0 {
            "-".to_string()
        } else {
            format!("{:.2}x", of / to)
        }
    };
    let mut table = format!(
        "{:<8} {:>9} {:>10} {:>11} {:>8} {:>16}",
        "design",
        "conflicts",
        "per incr.",
        format!("vs {base}"),
        "wall ms",
        format!("wall vs {base}")
    );
    for (name, run) in runs {
        let conflicts = run.total.conflicts;
        table += &format!(
            "\n{name:<8} {conflicts:>9} {:>10.2} {:>11} {:>8} {:>16}",
            run.conflicts_per_increment(),
            ratio(conflicts as f64, first.total.conflicts as f64),
            run.elapsed.as_millis(),
            ratio(run.elapsed.as_secs_f64(), first.elapsed.as_secs_f64()),
        );
    }
    table
}

/// Runs `race` with `strategy` on a fresh `index` of `cluster`.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// use std::sync::Arc;
/// use harness::race::{self, Layout, Race, Sharded};
///
/// let race = Race { clients: 3, per_client: 10, ..Race::default() };
/// let run = race::run(&cluster, "race-run", Arc::new(Sharded { shards: 2 }), race).await?;
/// assert_eq!((run.counted, run.total.acknowledged, run.lost()), (30, 30, 0));
/// assert_eq!(run.latencies.len(), 30);
///
/// // Each client on its own counter: nobody to race, nothing to retry.
/// let alone = Race { layout: Layout::PerClient, ..race };
/// let run = race::run(&cluster, "race-run", Arc::new(Sharded { shards: 2 }), alone).await?;
/// assert_eq!((run.counted, run.total.conflicts), (30, 0));
/// # Ok(()) }
/// ```
pub async fn run(
    cluster: &Cluster,
    index: &str,
    strategy: Arc<dyn Contender>,
    race: Race,
) -> Result<Run> {
    let ids = race.layout.ids(race.clients);
    strategy.prepare(&cluster.client, index, &ids).await?;
    let cpu_before = process_cpu();
    let started = Instant::now();

    // ANCHOR: spawn
    let mut clients = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let (client, strategy) = (cluster.client.clone(), strategy.clone());
        let index = index.to_string();
        clients.spawn(async move {
            let mut tally = Tally::default();
            let mut took = Vec::with_capacity(race.per_client as usize);
            for _ in 0..race.per_client {
                let started = Instant::now();
                tally += strategy.increment(&client, &index, &id, &race).await?;
                took.push(started.elapsed());
            }
            anyhow::Ok((tally, took))
        });
    }
    let (mut total, mut latencies) = (Tally::default(), Vec::new());
    while let Some(joined) = clients.join_next().await {
        let (tally, took) = joined.context("a client task panicked")??;
        total += tally;
        latencies.extend(took);
    }
    // ANCHOR_END: spawn

    let elapsed = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let mut counted = 0;
    let mut distinct = ids;
    distinct.dedup();
    for id in &distinct {
        counted += strategy.count(&cluster.client, index, id).await?;
    }
    Ok(Run {
        total,
        counted,
        expected: race.expected(),
        elapsed,
        cpu,
        latencies,
    })
}

/// CPU time (user + system) this process has used so far, all threads together.
///
/// ```
/// let before = harness::race::process_cpu();
/// let mut x = 0u64;
/// for i in 0..20_000_000u64 { x = x.wrapping_add(i * i); }
/// std::hint::black_box(x);
/// assert!(harness::race::process_cpu() > before);
/// ```
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64)
            + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The `q`-quantile (0.5 for the median) of `values`, by nearest rank; zero if empty.
///
/// ```
/// use std::time::Duration;
/// let ms = |n| Duration::from_millis(n);
/// let values: Vec<Duration> = (1..=100).map(ms).collect();
/// assert_eq!(harness::race::quantile(&values, 0.5), ms(50));
/// assert_eq!(harness::race::quantile(&values, 0.99), ms(99));
/// ```
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The sharded counter as a strategy of chapter 6's race, so that the contention benchmark
/// runs it beside the single hot document (`occ`): each race document becomes a counter of
/// `shards` documents, incremented by [`ShardedCounter::increment`] and read by
/// [`ShardedCounter::total`].
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// use std::sync::Arc;
/// use harness::race::{self, Race, Sharded};
///
/// let race = Race { clients: 4, per_client: 10, ..Race::default() };
/// let run = race::run(&cluster, "counter-sharded", Arc::new(Sharded { shards: 8 }), race)
///     .await?;
/// assert_eq!((run.counted, run.lost(), run.total.failed), (40, 0, 0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Sharded {
    pub shards: u32,
}

impl Contender for Sharded {
    fn name(&self) -> &str {
        "sharded"
    }

    fn prepare<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        ids: &'a [String],
    ) -> Step<'a, ()> {
        Box::pin(async move {
            doc::fresh_index(client, index).await?;
            let mut distinct = ids.to_vec();
            distinct.dedup();
            for id in &distinct {
                ShardedCounter::new(index, id, self.shards)
                    .create(client)
                    .await?;
            }
            Ok(())
        })
    }

    fn increment<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
        race: &'a Race,
    ) -> Step<'a, Tally> {
        Box::pin(async move {
            ShardedCounter::new(index, id, self.shards)
                .increment(client, race.backoff)
                .await
        })
    }

    fn count<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
    ) -> Step<'a, u64> {
        Box::pin(async move {
            let total = ShardedCounter::new(index, id, self.shards)
                .total(client)
                .await?;
            Ok(u64::try_from(total)?)
        })
    }
}

/// A contender whose race starts from no document at all (chapter 10): `prepare` leaves a fresh,
/// empty index, and a counter that was never written counts zero.
#[derive(Debug, Clone, Copy)]
pub struct FromNothing<C>(pub C);

impl<C: Contender> Contender for FromNothing<C> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn needs(&self) -> Needs {
        self.0.needs()
    }

    fn increment<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
        race: &'a Race,
    ) -> Step<'a, Tally> {
        self.0.increment(client, index, id, race)
    }

    fn prepare<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        _ids: &'a [String],
    ) -> Step<'a, ()> {
        Box::pin(doc::fresh_index(client, index))
    }

    fn count<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
    ) -> Step<'a, u64> {
        Box::pin(async move {
            match doc::find(client, index, id).await? {
                Some(counter) => Ok(counter.number("counter")? as u64),
                None => Ok(0),
            }
        })
    }

    fn loses_increments(&self) -> bool {
        self.0.loses_increments()
    }
}

/// How many scripts the cluster's nodes have compiled so far, summed (`GET
/// /_nodes/stats/script`): chapter 10 counts the compilations around a few updates.
pub async fn script_compilations(client: &Elasticsearch) -> Result<u64> {
    let response = client
        .nodes()
        .stats(elasticsearch::nodes::NodesStatsParts::Metric(&["script"]))
        .send()
        .await?;
    let stats = doc::expect_success(response, "reading script statistics").await?;
    let nodes = stats["nodes"]
        .as_object()
        .context("node statistics without nodes")?;
    Ok(nodes
        .values()
        .filter_map(|node| node["script"]["compilations"].as_u64())
        .sum())
}
