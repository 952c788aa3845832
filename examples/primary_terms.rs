//! Chapter 17: kill the node that holds a primary, and `_primary_term` moves from 1 to 2.
//!
//! Run it: `cargo run --example primary_terms` (it starts three nodes on 127.0.0.1, or asks
//! you to stop and start a node of the cluster `ELASTICSEARCH_URL` names). You should see the
//! account written in term 1, a replica promoted, the condition read before the kill accepted
//! once (HTTP 200, term 2) and then refused (HTTP 409), and the killed node back as a replica.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::IndexParts;
use elasticsearch::params::WaitForStatus;
use esbook::answer::Answer;
use esbook::doc;
use harness::cli::Args;
use harness::nodes::{self, Nodes};
use harness::report::{self, Claims};
use serde_json::{Value, json};

// ANCHOR: replicated
const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";
/// How long the master waits for a node that left before copying its shards elsewhere.
const DELAYED_TIMEOUT: &str = "10s";

async fn primary_terms(cluster: &Nodes, index: &str) -> Result<Value> {
    println!("-- 1. One primary, two replicas");
    let first = &cluster.nodes[0].client;
    doc::fresh_index(first, index).await?;
    nodes::replicate(first, index, 2, DELAYED_TIMEOUT).await?;
    let written = doc::put(first, index, ACCOUNT, json!({ "balance": 1000 }));
    let written = written.await?;
    let read = doc::read(first, index, ACCOUNT).await?;
    let term_before = nodes::primary_term(first, index).await?;
    println!("{}", nodes::copies_line(first, index).await?);
    println!("PUT {ACCOUNT}: _shards={}", written["_shards"]);
    println!(
        "GET {ACCOUNT}: balance={} _seq_no={} _primary_term={}",
        read.source["balance"], read.seq_no, read.primary_term
    );
    println!("the shard's primary term: {term_before}");
    // ANCHOR_END: replicated

    let master = nodes::elected_master(first).await?;
    // ANCHOR: kill
    println!("\n-- 2. The node holding the primary dies");
    let victim = nodes::primary_node(first, index).await?;
    let victim = victim.context("no started primary")?;
    // Every request from here on goes through a node that stays up.
    let survivor = cluster.other_than(&victim);
    cluster.kill(&victim).await?;
    let (promoted, took) =
        nodes::wait_for_new_primary(&survivor.client, index, &victim).await?;
    println!("killed {victim} ({})", cluster.how_killed());
    println!(
        "the replica on {promoted} was the primary {:.1}s after the kill",
        took.as_secs_f64()
    );
    let (yellow, left) = (WaitForStatus::Yellow, Some(cluster.nodes.len() - 1));
    let health = nodes::health(&survivor.client, Some(index), yellow, left).await?;
    println!("health of {index}: {}", nodes::health_line(&health));
    let nowhere = nodes::why_unassigned(&survivor.client, index).await?;
    println!("allocation explain: {nowhere}");
    // ANCHOR_END: kill

    // ANCHOR: changed
    println!("\n-- 3. What the failover changed");
    let term_after = nodes::primary_term(&survivor.client, index).await?;
    let reread = doc::read(&survivor.client, index, ACCOUNT).await?;
    println!("the shard's primary term: {term_before} -> {term_after}");
    println!(
        "GET {ACCOUNT}: balance={} _seq_no={} _primary_term={}",
        reread.source["balance"], reread.seq_no, reread.primary_term
    );
    // ANCHOR_END: changed

    // ANCHOR: stale_condition
    let (seq_no, term) = (read.seq_no, read.primary_term);
    println!("\n-- 4. PUT ?if_seq_no={seq_no}&if_primary_term={term}, twice");
    let mut answers = Vec::new();
    for attempt in ["first", "second"] {
        let response = survivor
            .client
            .index(IndexParts::IndexId(index, ACCOUNT))
            .if_seq_no(seq_no)
            .if_primary_term(term)
            .body(json!({ "balance": 800 }))
            .send()
            .await?;
        let answer = Answer::of(response).await?;
        println!("{attempt}: {}", answer.summary());
        answers.push(answer);
    }
    let (accepted, refused) = (&answers[0].body, &answers[1]);
    println!("the first, acknowledged by _shards={}", accepted["_shards"]);
    // ANCHOR_END: stale_condition

    // ANCHOR: restart
    println!("\n-- 5. The old primary comes back");
    cluster.restart(&victim).await?;
    let green = WaitForStatus::Green;
    let all = Some(cluster.nodes.len());
    let health_end =
        nodes::health(&survivor.client, Some(index), green, all).await?;
    let back = &cluster.node(&victim)?.client;
    let local = nodes::read_local_copy(back, index, ACCOUNT).await?;
    let term_end = nodes::primary_term(&survivor.client, index).await?;
    let copies = nodes::copies_line(&survivor.client, index).await?;
    println!("{copies}\nhealth: {}", nodes::health_line(&health_end));
    println!(
        "{victim}'s own copy: balance={} _seq_no={} _primary_term={}",
        local["_source"]["balance"], local["_seq_no"], local["_primary_term"]
    );
    println!("the shard's primary term: {term_end}");
    // ANCHOR_END: restart

    // What the run saw, for check() and report() below.
    Ok(json!({
        "written": written["_shards"]["successful"], "read": [seq_no, term],
        "reread": [reread.seq_no, reread.primary_term],
        "terms": [term_before, term_after, term_end], "health": [health, health_end],
        "master": master, "victim": victim, "promoted": promoted, "took": took.as_millis() as u64,
        "nowhere": nowhere, "copies": copies, "local": local,
        "statuses": [answers[0].status, refused.status], "accepted": accepted,
        "refused": refused.reason(),
    }))
}

const USAGE: &str = "usage: cargo run --example primary_terms (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        Args::from_env(USAGE)?.finish()?;
        let cluster = Nodes::connect(3).await?;
        let started = Instant::now();
        let seen = primary_terms(&cluster, INDEX).await?;
        let claims = check(&seen);
        report(&cluster, &seen, &claims, started.elapsed());
        claims.into_result()
    })
    .await
}

/// Chapter 17's claims, held against what the run saw (a failed one is named by its text).
fn check(s: &Value) -> Claims {
    let (terms, health, local) = (&s["terms"], &s["health"], &s["local"]);
    let (accepted, after) = (&s["accepted"], &terms[1]);
    let stale = format!(
        "required seqNo [0], primary term [1]. current document has seqNo [{}] \
         and primary term [{after}]",
        accepted["_seq_no"]
    );
    let rejoined = format!("replica on {} (STARTED)", s["victim"]).replace('"', "");
    let mut claims = Claims::new();
    harness::check_each!(claims;
        s["written"] == 3 && s["read"] == json!([0, 1]) && terms[0] == 1,
        s["promoted"] != s["victim"],
        health[0]["status"] == "yellow" && health[0]["unassigned_shards"] == 1,
        s["nowhere"].as_str().is_some_and(|n| n.contains("same_shard")),
        terms[1] == 2 && s["reread"] == s["read"],
        s["statuses"] == json!([200, 409]) && accepted["_primary_term"] == 2,
        accepted["_shards"]["successful"] == 2,
        s["refused"].as_str().is_some_and(|r| r.contains(&stale)),
        health[1]["status"] == "green",
        s["copies"].as_str().is_some_and(|c| c.contains(&rejoined)),
        local["_seq_no"] == accepted["_seq_no"] && local["_primary_term"] == 2,
        local["_source"]["balance"] == 800,
        terms[2] == 2,
    );
    claims
}

/// The machine-readable `RESULT` line (printed only with `OCC_RESULTS=1`).
fn report(cluster: &Nodes, s: &Value, claims: &Claims, elapsed: Duration) {
    let victim = s["victim"].as_str().unwrap_or_default();
    report::result(
        &cluster.cluster(cluster.other_than(victim)),
        elapsed,
        json!({
            "example": "primary_terms",
            "nodes": cluster.nodes.len(),
            "killed": victim,
            "killed_master": s["master"] == victim,
            "promoted": s["promoted"],
            "promotion_ms": s["took"],
            "read_before": s["read"],
            "primary_term_before": s["terms"][0],
            "primary_term_after": s["terms"][1],
            "stale_condition_first": s["statuses"][0],
            "new_write": [s["accepted"]["_seq_no"], s["accepted"]["_primary_term"]],
            "stale_condition_second": s["statuses"][1],
            "claims": claims.checked(),
            "held": claims.all_hold(),
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    /// The recorded run is the one chapter 17 tells: term 1 to 2, the stale condition
    /// accepted (200) then refused (409), and every number the chapter quotes from it.
    #[test]
    fn the_recorded_run_is_the_one_the_chapter_tells() {
        let run = recorded::result("primary_terms", "example", "primary_terms");
        assert_eq!(run["held"], true);
        assert_eq!(run["nodes"], 3);
        assert_eq!(run["read_before"], json!([0, 1]));
        let terms = (&run["primary_term_before"], &run["primary_term_after"]);
        assert_eq!(terms, (&json!(1), &json!(2)));
        assert_eq!(run["stale_condition_first"], 200);
        assert_eq!(run["new_write"], json!([1, 2]));
        assert_eq!(run["stale_condition_second"], 409);
        assert_ne!(run["killed"], run["promoted"]);

        let chapter = recorded::chapter("ch17-00-a-real-cluster.md");
        let output = recorded::output("primary_terms");
        assert!(chapter.contains("Within a second a replica was the primary"));
        assert!(run["promotion_ms"].as_u64().unwrap() < 1000, "{run}");
        let took = r"was the primary (\d+\.\d)s after the kill";
        assert!(recorded::quoted(&output, took).parse::<f64>().unwrap() < 1.0);
        let shards = recorded::quoted_all(&output, r#""successful":(\d+)"#);
        assert_eq!(shards, ["3", "2"]);
        assert_eq!(
            recorded::quoted(&chapter, r"`_shards.successful` (\d+)"),
            shards[0]
        );
        let by = r"acknowledged by the (\d+)\s+copies there are";
        assert_eq!(recorded::quoted(&chapter, by), shards[1]);
        let reason =
            r"HTTP 409 version_conflict_engine_exception: .*, (required .*)";
        let reason = recorded::quoted(&output, reason);
        let quoted =
            recorded::quoted(&chapter, r"(?s)the reason says it all: \*(.*?)\*");
        let quoted = quoted.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(quoted, reason);
        for term in recorded::quoted_all(&output, r"primary term: (?:1 -> )?(\d+)")
        {
            assert!(["1", "2"].contains(&term.as_str()), "{term}");
        }
    }
}
