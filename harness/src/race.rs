//! The lost-update race of chapter 6, shared by its example (`counter_race`), chapter 10's
//! race from no document (`upsert_race`) and the contention benchmark
//! (`benches/contention.rs`, chapter 16); and [`until_written`], its bounded retry loop, which
//! later chapters' clients reuse (the sharded counter, update-by-query's customer).
//!
//! N clients increment a counter M times each, all at once, with one of the
//! [`Strategy`]s. [`run`] prepares a fresh index, runs the clients, and returns what they saw
//! ([`Tally`]), what the counter ended at, how long each increment took and how much CPU this
//! process spent on it.
//!
//! A strategy is anything that implements [`Contender`]: the three the notebook shows are the
//! variants of [`Strategy`]; another design (a sharded counter, say) plugs in by implementing
//! the trait, with its own way of preparing the index and of reading the count back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::{Elasticsearch, IndexParts, UpdateParts};
use serde_json::json;

use esbook::counter::ShardedCounter;
use esbook::doc;
use esbook::retry::{Backoff, Tally, until_written};
use esbook::{Cluster, Needs};

use crate::cli::Args;

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
/// The notebook's three are the variants of [`Strategy`]. Another plugs in by implementing
/// this: `increment` is one client's increment; `prepare` and `count` default to one
/// `{"counter": N}` document per id, and a design that keeps its count elsewhere (several
/// documents, events to be counted, no document at first) overrides them.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// use std::sync::Arc;
/// use elasticsearch::Elasticsearch;
/// use esbook::Needs;
/// use esbook::retry::Tally;
/// use harness::race::{self, Contender, Race, Step, Strategy};
///
/// /// Chapter 6's OCC client, under a name of its own.
/// struct Careful;
///
/// impl Contender for Careful {
///     fn name(&self) -> &str {
///         "careful"
///     }
///     fn needs(&self) -> Needs {
///         Needs::Core
///     }
///     fn increment<'a>(
///         &'a self,
///         client: &'a Elasticsearch,
///         index: &'a str,
///         id: &'a str,
///         race: &'a Race,
///     ) -> Step<'a, Tally> {
///         Strategy::Occ.increment(client, index, id, race)
///     }
/// }
///
/// let race = Race { clients: 2, per_client: 5, ..Race::default() };
/// let run = race::run(&cluster, "race-contender", Arc::new(Careful), race).await?;
/// assert_eq!((run.counted, run.lost()), (10, 0));
/// # Ok(()) }
/// ```
pub trait Contender: Send + Sync {
    /// The name results and charts use.
    fn name(&self) -> &str;
    /// What it needs from the server.
    fn needs(&self) -> Needs;
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

/// The notebook's three strategies.
///
/// ```
/// use harness::race::{Contender, Strategy};
/// use esbook::Needs;
///
/// let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
/// assert_eq!(names, ["none", "occ", "server"]);
/// assert_eq!(Strategy::Server.needs(), Needs::Scripting);
/// assert!(Strategy::None.loses_increments() && !Strategy::Occ.loses_increments());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// GET, add one, index without conditions.
    None,
    /// GET with `_seq_no`/`_primary_term`, index with `if_seq_no`/`if_primary_term`, retry
    /// from a fresh read on a 409.
    Occ,
    /// A scripted `_update` with `retry_on_conflict`.
    Server,
}

impl Strategy {
    pub const ALL: [Strategy; 3] =
        [Strategy::None, Strategy::Occ, Strategy::Server];
}

impl Contender for Strategy {
    fn name(&self) -> &str {
        match self {
            Strategy::None => "none",
            Strategy::Occ => "occ",
            Strategy::Server => "server",
        }
    }

    /// The scripted update needs Painless; the others run on any Elasticsearch.
    fn needs(&self) -> Needs {
        match self {
            Strategy::Server => Needs::Scripting,
            Strategy::None | Strategy::Occ => Needs::Core,
        }
    }

    fn increment<'a>(
        &'a self,
        client: &'a Elasticsearch,
        index: &'a str,
        id: &'a str,
        race: &'a Race,
    ) -> Step<'a, Tally> {
        Box::pin(async move {
            // ANCHOR: dispatch
            match self {
                Strategy::None => increment_without_occ(client, index, id).await,
                Strategy::Occ => {
                    increment_with_occ(client, index, id, race.backoff).await
                }
                Strategy::Server => {
                    let retries = race.retry_on_conflict;
                    increment_on_server(client, index, id, retries, race.backoff)
                        .await
                }
            }
            // ANCHOR_END: dispatch
        })
    }

    fn loses_increments(&self) -> bool {
        *self == Strategy::None
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
}

/// Runs `race` with `strategy` on a fresh `index` of `cluster`.
///
/// ```
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// use std::sync::Arc;
/// use harness::race::{self, Layout, Race, Strategy};
///
/// let race = Race { clients: 3, per_client: 10, ..Race::default() };
/// let run = race::run(&cluster, "race-run", Arc::new(Strategy::Occ), race).await?;
/// assert_eq!((run.counted, run.total.acknowledged, run.lost()), (30, 30, 0));
/// assert_eq!(run.latencies.len(), 30);
///
/// // Each client on its own document: nobody to race, nothing to retry.
/// let alone = Race { layout: Layout::PerClient, ..race };
/// let run = race::run(&cluster, "race-run", Arc::new(Strategy::None), alone).await?;
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

// ANCHOR: none
/// GET, add one, write back unconditionally: the read-modify-write that
/// loses updates.
async fn increment_without_occ(
    client: &Elasticsearch,
    index: &str,
    id: &str,
) -> Result<Tally> {
    let seen = doc::read(client, index, id).await?;
    let next = seen.number("counter")? + 1;
    let written = doc::put(client, index, id, json!({ "counter": next })).await?;
    Ok(Tally::written(&written))
}
// ANCHOR_END: none

// ANCHOR: occ
/// GET with `_seq_no`/`_primary_term`, then write on condition they still
/// hold. A conflict means another client wrote in between: the whole
/// read-and-write is tried again (see `until_written`).
async fn increment_with_occ(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    backoff: Backoff,
) -> Result<Tally> {
    until_written(backoff, || async {
        let seen = doc::read(client, index, id).await?;
        let response = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "counter": seen.number("counter")? + 1 }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await
}
// ANCHOR_END: occ


// ANCHOR: server
/// Let Elasticsearch do the read-modify-write: a scripted update, retried by
/// the server up to `retry_on_conflict` times when another write slips in
/// between its own read and write. If even those retries run out, the 409
/// reaches us, and we retry like any other conflict.
async fn increment_on_server(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    retry_on_conflict: u32,
    backoff: Backoff,
) -> Result<Tally> {
    until_written(backoff, || async {
        let response = client
            .update(UpdateParts::IndexId(index, id))
            .retry_on_conflict(i64::from(retry_on_conflict))
            .body(json!({
                "script": { "source": "ctx._source.counter += 1", "lang": "painless" }
            }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await
}
// ANCHOR_END: server

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

    fn needs(&self) -> Needs {
        Needs::Core
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
