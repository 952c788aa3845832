//! Chapter 17.1: what an acknowledged write survives when the node holding it is killed.
//!
//! Run it: `cargo run --example durability` (three nodes on 127.0.0.1 or in containers, as for
//! chapter 17). You should see 100 writes acknowledged into an index whose only copy is on one
//! node, that node killed with `SIGKILL` and started again, and a count: all 100 there with the
//! default `index.translog.durability: request`, none of them with `async`. Then, with two
//! replicas and one node down, a write with `wait_for_active_shards=3` refused after its
//! `timeout`, and a write with the default acknowledged by the copies that are up.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::indices::IndicesRefreshParts;
use elasticsearch::{CountParts, Elasticsearch, IndexParts};
use esbook::answer::Answer;
use esbook::doc;
use harness::cli::Args;
use harness::nodes::{self, Nodes};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const WRITES: usize = 100;
/// How long `async` waits between fsyncs of the translog (the default is 5s).
const SYNC_INTERVAL: &str = "60s";

// ANCHOR: kill_and_count
/// Writes `WRITES` documents into an index whose only copy is on the last node, kills that
/// node, starts it again, and counts what is there.
async fn acknowledged_then_killed(
    cluster: &Nodes,
    index: &str,
    durability: &str,
) -> Result<Value> {
    let via = &cluster.nodes[0];
    let holder = cluster.nodes[cluster.nodes.len() - 1].name.clone();
    let settings = json!({
        "translog.durability": durability, "translog.sync_interval": SYNC_INTERVAL,
    });
    nodes::create_on(&via.client, index, &holder, settings).await?;
    let term_before = nodes::primary_term(&via.client, index).await?;
    println!("{index}: one copy, on {holder}; translog.durability={durability}");

    let mut acknowledged = 0u64;
    for i in 0..WRITES {
        let response = via
            .client
            .index(IndexParts::IndexId(index, &i.to_string()))
            .body(json!({ "n": i }))
            .send()
            .await?;
        if response.status_code().as_u16() == 201 {
            acknowledged += 1;
        }
    }
    let last_ack = Instant::now();
    println!("PUT {index}/_doc/0..{WRITES}: {acknowledged} acknowledged");

    cluster.kill(&holder).await?;
    let (how, since) = (cluster.how_killed(), last_ack.elapsed().as_secs_f64());
    println!("killed {holder} ({how}), {since:.1}s later");
    cluster.restart(&holder).await?;
    let (health, _) = nodes::wait_for_green(&via.client, index).await?;
    let status = health["status"].as_str().unwrap_or_default();
    let took = last_ack.elapsed().as_secs_f64();
    let term = nodes::primary_term(&via.client, index).await?;
    println!("{holder} back, {index} {status} {took:.1}s after the last write");
    println!("primary term: {term_before} -> {term} (the copy was started again)");

    let found = count(&via.client, index).await?;
    let lost = acknowledged.saturating_sub(found);
    println!("count: {found}; of {acknowledged} acknowledged, {lost} lost");
    Ok(json!({
        "acknowledged": acknowledged, "found": found, "lost": lost,
        "terms": [term_before, term],
    }))
}
// ANCHOR_END: kill_and_count

// ANCHOR: count
/// How many documents `index` holds, after a refresh makes every indexed one searchable.
async fn count(client: &Elasticsearch, index: &str) -> Result<u64> {
    let refresh = IndicesRefreshParts::Index(&[index]);
    let refreshed = client.indices().refresh(refresh).send().await?;
    doc::expect_success(refreshed, "refreshing").await?;
    let response = client.count(CountParts::Index(&[index])).send().await?;
    let body = doc::expect_success(response, "counting").await?;
    body["count"].as_u64().context("a count")
}
// ANCHOR_END: count

// ANCHOR: active_shards
/// With two replicas and a replica's node down: a write that asks for three active copies, and
/// one that asks for the default (one: the primary).
async fn active_shards(cluster: &Nodes, index: &str) -> Result<Value> {
    let via = &cluster.nodes[0];
    doc::fresh_index(&via.client, index).await?;
    nodes::replicate(&via.client, index, 2, "10m").await?;
    let copies = nodes::shard_copies(&via.client, index).await?;
    let down = copies.iter().find(|c| !c.primary && c.node != via.name);
    let down = down.context("a replica on another node")?.node.clone();
    cluster.kill(&down).await?;
    nodes::wait_for_copy_gone(&via.client, index, &down).await?;
    println!("killed {down}, which held a replica of {index}");
    println!("{}", nodes::copies_line(&via.client, index).await?);

    let started = Instant::now();
    let strict = via.client.index(IndexParts::IndexId(index, "strict"));
    let strict = strict.wait_for_active_shards("3").timeout("2s");
    let strict = strict.body(json!({ "n": 1 })).send().await?;
    let strict = Answer::of(strict).await?;
    let waited = started.elapsed().as_secs_f64();
    let said = strict.summary();
    let said = said.split(", request:").next().unwrap_or_default();
    println!(
        "PUT strict?wait_for_active_shards=3&timeout=2s, {waited:.1}s: {said}"
    );

    let default = via.client.index(IndexParts::IndexId(index, "default"));
    let default = default.body(json!({ "n": 2 })).send().await?;
    let default = Answer::of(default).await?;
    let shards = &default.body["_shards"];
    println!("PUT default: {}, _shards={shards}", default.summary());

    cluster.restart(&down).await?;
    nodes::wait_for_green(&via.client, index).await?;
    let found = count(&via.client, index).await?;
    println!("{down} back, {index} green; count: {found} document(s)");
    Ok(json!({
        "statuses": [strict.status, default.status], "refused": strict.error_type(),
        "waited_ms": (waited * 1000.0) as u64, "shards": shards, "found": found,
    }))
}
// ANCHOR_END: active_shards

const USAGE: &str = "usage: cargo run --example durability (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        Args::from_env(USAGE)?.finish()?;
        let cluster = Nodes::connect(3).await?;
        let claims = run(&cluster, "durability").await?;
        claims.into_result()
    })
    .await
}

/// The three parts, each checked and reported; indices are named `PREFIX-request`, ...
async fn run(cluster: &Nodes, prefix: &str) -> Result<Claims> {
    let mut claims = Claims::new();
    for (n, part) in [(1, "request"), (2, "async")] {
        println!("-- {n}. index.translog.durability: {part}");
        let started = Instant::now();
        let index = format!("{prefix}-{part}");
        let seen = acknowledged_then_killed(cluster, &index, part).await?;
        let (acked, found) = (&seen["acknowledged"], &seen["found"]);
        let lost_some = found.as_u64() < acked.as_u64();
        harness::check_each!(claims;
            acked == WRITES,
            seen["terms"][1].as_i64() > seen["terms"][0].as_i64(),
            lost_some == (part == "async"),
        );
        report(cluster, started.elapsed(), part, seen);
        println!();
    }
    println!("-- 3. wait_for_active_shards, with a node down");
    let started = Instant::now();
    let mut seen = active_shards(cluster, &format!("{prefix}-replicated")).await?;
    let shards = &seen["shards"];
    harness::check_each!(claims;
        seen["statuses"] == json!([503, 201]),
        seen["refused"] == "unavailable_shards_exception",
        // It waited out its timeout (2 s) before the refusal, rather than failing at once. The
        // server times it on a clock it updates every 200 ms, so the client may see a little less.
        seen["waited_ms"].as_u64() >= Some(1500),
        shards["total"] == 3 && shards["successful"] == 2,
        seen["found"] == 1,
    );
    let acked = seen["statuses"].as_array().map_or(0, |s| {
        s.iter().filter(|status| *status == 201).count() as u64
    });
    seen["acknowledged"] = json!(acked);
    seen["lost"] = json!(acked.saturating_sub(seen["found"].as_u64().unwrap_or(0)));
    report(cluster, started.elapsed(), "wait_for_active_shards", seen);
    Ok(claims)
}

/// The machine-readable `RESULT` line of one part (printed only with `OCC_RESULTS=1`).
fn report(cluster: &Nodes, elapsed: Duration, part: &str, seen: Value) {
    let durability = if part == "async" { "async" } else { "request" };
    let mut fields =
        json!({ "example": "durability", "part": part, "durability": durability });
    if let (Some(fields), Value::Object(seen)) = (fields.as_object_mut(), seen) {
        fields.extend(seen);
    }
    report::result(&cluster.cluster(&cluster.nodes[0]), elapsed, fields);
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    /// The recorded run is the one the chapter tells, number for number.
    #[test]
    fn the_recorded_run_is_the_one_the_chapter_tells() {
        let chapter =
            recorded::chapter("ch17-01-what-an-acknowledgement-survives.md");
        let output = recorded::output("durability");
        let request = recorded::result("durability", "part", "request");
        let async_ = recorded::result("durability", "part", "async");
        assert_eq!(
            (&request["acknowledged"], &request["lost"]),
            (&json!(100), &json!(0))
        );
        assert_eq!(async_["acknowledged"], 100);
        let lost = recorded::quoted_all(&output, r"acknowledged, (\d+) lost");
        assert_eq!(lost, ["0", async_["lost"].to_string().as_str()]);
        for run in [&request, &async_] {
            let part = run["part"].as_str().unwrap();
            let told = format!(r"With `{part}`, \*\*(\d+ of \d+)\*\*");
            let told = recorded::quoted(&chapter, &told);
            assert_eq!(told, format!("{} of {}", run["lost"], run["acknowledged"]));
        }
        let active =
            recorded::result("durability", "part", "wait_for_active_shards");
        assert_eq!(active["statuses"], json!([503, 201]));
        let count = r"the count after the node came back was (\d+)";
        assert_eq!(
            recorded::quoted(&chapter, count),
            active["found"].to_string()
        );
        let shards =
            recorded::quoted(&output, r#"_shards=\{"total":3,"successful":(\d)"#);
        assert_eq!(
            recorded::quoted(&chapter, r"acknowledged by the (\d) copies"),
            shards
        );
        let terms = recorded::quoted(&output, r"primary term: (\d+ -> \d+)");
        let told =
            recorded::quoted(&chapter, r"primary term \(from (\d+ to \d+) in");
        assert_eq!(told.replace(" to ", " -> "), terms);
        let waited = recorded::quoted(&output, r"timeout=2s, (\d+\.\d)s:");
        let told = recorded::quoted(&chapter, r"refused after (\d+\.\d) seconds");
        assert_eq!(told, waited);
    }
}
