//! Chapter 17: a real cluster loses the node that holds a primary, and `_primary_term` moves.
//!
//! Three nodes, one index with one primary and two replicas, the article's account 12345.
//!
//! 1. Write and read the account: `_seq_no` 0, `_primary_term` 1, acknowledged by all three
//!    copies.
//! 2. Kill the node that holds the primary (`SIGKILL` of its processes, or of its container),
//!    talk to a surviving node, and wait until a replica has been promoted: the index is yellow.
//! 3. The shard's primary term is now 2; the document still carries `_primary_term` 1, the term
//!    of the write that produced it.
//! 4. A write carrying the condition read before the failover (`if_seq_no=0&if_primary_term=1`)
//!    is accepted, because nothing has changed the document since, and gets `_primary_term` 2.
//!    The same write again is a 409: *current document has seqNo [1] and primary term [2]*.
//! 5. The killed node comes back as a replica, with the term-2 write; the term stays 2.
//!
//! Run it: `cargo run --example primary_terms`. It starts (or reuses) three nodes on 127.0.0.1
//! (or three containers); with `ELASTICSEARCH_URL` set it uses your cluster if it has three
//! nodes, and asks you to stop and start the node it names. It exits non-zero if any claim
//! above does not hold.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use elasticsearch::params::WaitForStatus;
use elasticsearch::{Elasticsearch, GetParts, IndexParts};
use harness::cli::Args;
use esbook::doc;
use harness::nodes::{self, Nodes};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";
/// How long the master waits for a node that left before copying its shards elsewhere.
const DELAYED_TIMEOUT: &str = "10s";

const USAGE: &str = "usage: cargo run --example primary_terms (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        Args::from_env(USAGE)?.finish()?;
        let cluster = Nodes::connect(3).await?;
        primary_terms(&cluster, INDEX).await?.into_result()
    })
    .await
}

async fn primary_terms(cluster: &Nodes, index: &str) -> Result<Claims> {
    let started = Instant::now();
    let mut claims = Claims::new();
    let names: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    println!(
        "Connected to Elasticsearch {} on {} nodes ({}): {}",
        cluster.version,
        cluster.nodes.len(),
        cluster.source,
        names.join(", ")
    );

    println!("\n-- 1. One primary, two replicas");
    let first = &cluster.nodes[0].client;
    // ANCHOR: replicated
    doc::fresh_index(first, index).await?;
    nodes::replicate(first, index, 2, DELAYED_TIMEOUT).await?;
    let written =
        doc::put(first, index, ACCOUNT, json!({ "balance": 1000 })).await?;
    let seen = doc::read(first, index, ACCOUNT).await?;
    let term_before = nodes::primary_term(first, index).await?;
    // ANCHOR_END: replicated
    print_copies(first, index).await?;
    println!(
        "PUT {ACCOUNT} acknowledged by {} of {} copies",
        written["_shards"]["successful"], written["_shards"]["total"]
    );
    println!(
        "GET {ACCOUNT}: balance={} _seq_no={} _primary_term={}; the shard's primary term: {term_before}",
        seen.source["balance"], seen.seq_no, seen.primary_term
    );
    claims.check(
        written["_shards"]["successful"] == 3,
        "the write was acknowledged by all three copies",
    );
    claims.check(
        (seen.seq_no, seen.primary_term, term_before) == (0, 1, 1),
        "before any failure: _seq_no 0, _primary_term 1, and the shard is in term 1",
    );

    println!("\n-- 2. The node holding the primary dies");
    // ANCHOR: kill
    let victim = nodes::primary_node(first, index)
        .await?
        .context("the index has no started primary")?;
    let master = elected_master(first).await?;
    // Every request from here on goes through a node that stays up.
    let survivor = cluster.other_than(&victim);
    let killed = Instant::now();
    cluster.kill(&victim).await?;
    let (promoted, _) =
        nodes::wait_for_new_primary(&survivor.client, index, &victim).await?;
    let took = killed.elapsed();
    // ANCHOR_END: kill
    println!(
        "killed {victim} ({}{}); from now on every request goes to {}",
        cluster.how_killed(),
        if master == victim {
            ", the elected master too"
        } else {
            ""
        },
        survivor.name
    );
    println!(
        "the replica on {promoted} was the primary {:.1}s after the kill",
        took.as_secs_f64()
    );
    let health =
        nodes::health(&survivor.client, Some(index), WaitForStatus::Yellow).await?;
    println!(
        "health of {index}: {}, {} nodes, unassigned_shards={}; delayed_unassigned_shards={} \
         (cluster-wide: copies of every index waiting out \
         index.unassigned.node_left.delayed_timeout, {DELAYED_TIMEOUT} here)",
        health["status"].as_str().unwrap_or_default(),
        health["number_of_nodes"],
        health["unassigned_shards"],
        health["delayed_unassigned_shards"]
    );
    let nowhere = no_node_for_the_third_copy(&survivor.client, index).await?;
    println!("allocation explain: {nowhere}");
    claims.check(
        promoted != victim
            && health["status"] == "yellow"
            && health["unassigned_shards"] == 1,
        "a replica was promoted and the index is yellow: a primary, a replica, one copy unassigned",
    );
    claims.check(
        nowhere.contains("same_shard"),
        "the third copy has nowhere to go: no node may hold two copies of one shard",
    );

    println!("\n-- 3. What the failover changed");
    let term_after = nodes::primary_term(&survivor.client, index).await?;
    let reread = doc::read(&survivor.client, index, ACCOUNT).await?;
    println!("the shard's primary term: {term_before} -> {term_after}");
    println!(
        "GET {ACCOUNT}: balance={} _seq_no={} _primary_term={}",
        reread.source["balance"], reread.seq_no, reread.primary_term
    );
    claims.check(
        term_after == term_before + 1,
        format!("the promotion started a new term: {term_before} -> {term_after}"),
    );
    claims.check(
        (reread.seq_no, reread.primary_term) == (seen.seq_no, seen.primary_term),
        "the document still carries the _seq_no and _primary_term of the write that produced it",
    );

    println!("\n-- 4. A write carrying the condition read before the failover");
    let request = format!(
        "PUT /{index}/_doc/{ACCOUNT}?if_seq_no={}&if_primary_term={}",
        seen.seq_no, seen.primary_term
    );
    let mut answers = Vec::new();
    for attempt in ["first", "second"] {
        // ANCHOR: stale_condition
        let response = survivor
            .client
            .index(IndexParts::IndexId(index, ACCOUNT))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "balance": 800 }))
            .send()
            .await?;
        // ANCHOR_END: stale_condition
        let status = response.status_code().as_u16();
        let body: Value = response.json().await?;
        if status == 200 {
            println!(
                "{attempt} {request} -> HTTP {status}: result={} _seq_no={} _primary_term={}, \
                 acknowledged by {} of {} copies",
                body["result"],
                body["_seq_no"],
                body["_primary_term"],
                body["_shards"]["successful"],
                body["_shards"]["total"]
            );
        } else {
            println!(
                "{attempt} {request} -> HTTP {status}: {}",
                doc::reason(&body)
            );
        }
        answers.push((status, body));
    }
    let (first_status, accepted) = &answers[0];
    let (second_status, refused) = &answers[1];
    claims.check(
        *first_status == 200,
        "the condition read before the failover is accepted: nothing has written the document since",
    );
    claims.check(
        accepted["_primary_term"] == term_after && accepted["_shards"]["successful"] == 2,
        format!(
            "the new write gets _primary_term {term_after}, and is acknowledged by the two copies there are"
        ),
    );
    let expected_reason = format!(
        "required seqNo [{}], primary term [{}]. current document has seqNo [{}] and primary term [{term_after}]",
        seen.seq_no, seen.primary_term, accepted["_seq_no"]
    );
    claims.check(
        *second_status == 409 && doc::reason(refused).contains(&expected_reason),
        "the same condition again is a 409: the document now carries the term-2 write",
    );

    println!("\n-- 5. The old primary comes back");
    // ANCHOR: restart
    cluster.restart(&victim).await?;
    let health =
        nodes::health(&survivor.client, Some(index), WaitForStatus::Green).await?;
    let back = cluster.node(&victim)?;
    let local_copy = read_local_copy(&back.client, index).await?;
    // ANCHOR_END: restart
    print_copies(&survivor.client, index).await?;
    let term_end = nodes::primary_term(&survivor.client, index).await?;
    println!(
        "health: {}; {victim}'s own copy: balance={} _seq_no={} _primary_term={}; primary term {term_end}",
        health["status"].as_str().unwrap_or_default(),
        local_copy["_source"]["balance"],
        local_copy["_seq_no"],
        local_copy["_primary_term"]
    );
    let copies = nodes::shard_copies(&survivor.client, index).await?;
    claims.check(
        health["status"] == "green"
            && copies.iter().any(|c| c.node == victim && !c.primary),
        format!("{victim} is back and holds a replica: the index is green"),
    );
    claims.check(
        local_copy["_seq_no"] == accepted["_seq_no"]
            && local_copy["_primary_term"] == term_after
            && local_copy["_source"]["balance"] == 800,
        format!("{victim}'s copy caught up with the term-{term_after} write"),
    );
    claims.check(
        term_end == term_after,
        "a node coming back does not change the term: only a promotion does",
    );

    println!();
    report::result(
        &cluster.cluster(survivor),
        started.elapsed(),
        json!({
            "example": "primary_terms",
            "nodes": cluster.nodes.len(),
            "killed": victim,
            "killed_master": master == victim,
            "promoted": promoted,
            "promotion_ms": took.as_millis() as u64,
            "read_before": [seen.seq_no, seen.primary_term],
            "primary_term_before": term_before,
            "primary_term_after": term_after,
            "stale_condition_first": first_status,
            "new_write": [accepted["_seq_no"], accepted["_primary_term"]],
            "stale_condition_second": second_status,
            "claims": claims.checked(),
            "held": claims.all_hold(),
        }),
    );
    Ok(claims)
}

/// Prints where each copy of the shard is.
async fn print_copies(client: &Elasticsearch, index: &str) -> Result<()> {
    let copies = nodes::shard_copies(client, index).await?;
    let shown: Vec<String> = copies
        .iter()
        .map(|c| {
            let role = if c.primary { "primary" } else { "replica" };
            format!("{role} on {} ({})", c.node, c.state)
        })
        .collect();
    println!("shard 0 of {index}: {}", shown.join(", "));
    Ok(())
}

/// The name of the elected master node.
async fn elected_master(client: &Elasticsearch) -> Result<String> {
    let response = client.cat().master().format("json").send().await?;
    let rows = doc::expect_success(response, "asking for the master").await?;
    Ok(rows[0]["node"].as_str().unwrap_or_default().to_string())
}

/// Why the copy that lost its node stays unassigned, in one line: each remaining node's
/// deciding "no", from the allocation explain API.
async fn no_node_for_the_third_copy(
    client: &Elasticsearch,
    index: &str,
) -> Result<String> {
    let response = client
        .cluster()
        .allocation_explain()
        .body(json!({ "index": index, "shard": 0, "primary": false }))
        .send()
        .await?;
    let body = doc::expect_success(response, "explaining the allocation").await?;
    let decisions: Vec<String> = body["node_allocation_decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|node| {
            let deciders: Vec<&str> = node["deciders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["decision"] == "NO")
                .filter_map(|d| d["decider"].as_str())
                .collect();
            format!(
                "{}: {}",
                node["node_name"].as_str().unwrap_or_default(),
                deciders.join("+")
            )
        })
        .collect();
    Ok(format!(
        "can_allocate={}; no on {}",
        body["can_allocate"].as_str().unwrap_or_default(),
        decisions.join(", ")
    ))
}

/// The document as the node's own copy holds it (`preference=_local`), whichever copy is the
/// primary.
async fn read_local_copy(client: &Elasticsearch, index: &str) -> Result<Value> {
    let response = client
        .get(GetParts::IndexId(index, ACCOUNT))
        .preference("_local")
        .send()
        .await?;
    doc::expect_success(response, "reading the node's own copy").await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On three real nodes: the primary's node is killed, a replica is promoted, the term goes
    /// from 1 to 2, the pre-failover condition is accepted once and then refused, and the
    /// killed node comes back with the term-2 write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killing_the_primary_starts_a_new_term() {
        let cluster = Nodes::connect(3).await.expect("a three-node cluster");
        let claims = primary_terms(&cluster, "test-primary-terms")
            .await
            .expect("the failover runs");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
