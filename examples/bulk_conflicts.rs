//! Chapter 12: bulk writes with conditions.
//!
//! Twenty products hold 100 units each. An order service reads all twenty (`_mget`) and writes
//! the new stock levels back in one `_bulk`; between its read and its write the warehouse
//! restocks five of them, every run. Three writers: `blind` (no conditions: the restocks are
//! gone), `unchecked` (conditions, but it trusts the HTTP 200: five order lines silently
//! missing), `checked` (reads every item, re-sends only the conflicted or rejected ones).
//!
//! Run it: `cargo run --example bulk_conflicts`. You should see each writer's bulk answers and
//! the products left wrong (none for `checked`), then one closing line.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::{BulkIndexOperation, BulkOperation, BulkParts, Elasticsearch};
use esbook::doc::{self, Outcome, Versioned};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs, bulk};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "stock";
const PRODUCTS: usize = 20;
const INITIAL_STOCK: i64 = 100;
/// The products the warehouse restocks between the order service's read and its write.
const RESTOCKED: [usize; 5] = [3, 7, 11, 15, 19];
const RESTOCK: i64 = 10;

#[tokio::main]
async fn main() -> ExitCode {
    let usage = "usage: cargo run --example bulk_conflicts (no flags)";
    harness::run_example(usage, Needs::Core, |cluster| async move {
        let mut claims = Claims::new();
        for writer in ["blind", "unchecked", "checked"] {
            let how = (writer, 1, Backoff::default());
            run_writer(&cluster, INDEX, how, &mut claims).await?;
        }
        Ok(claims)
    })
    .await
}

fn product(i: usize) -> String {
    format!("product-{i:02}")
}

// ANCHOR: conditional
/// The order line for product `id`: its stock as `seen`, less what the order
/// reserves (1, 2 or 3 units).
fn order_line(id: &str, seen: &Versioned) -> Result<BulkIndexOperation<Value>> {
    let stock = seen.number("stock")? - ordered(id);
    Ok(BulkOperation::index(json!({ "stock": stock })).id(id))
}

/// The item carries the `_seq_no`/`_primary_term` its value was computed from.
fn conditional(
    item: BulkIndexOperation<Value>,
    seen: &Versioned,
) -> BulkIndexOperation<Value> {
    item.if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
}
// ANCHOR_END: conditional

fn ordered(id: &str) -> i64 {
    let n: i64 = id.trim_start_matches("product-").parse().unwrap_or(0);
    1 + n % 3
}

// ANCHOR: write_once
/// The blind and unchecked writers: one read, one bulk, and a look at the
/// HTTP status only.
async fn write_once(
    client: &Elasticsearch,
    index: &str,
    writer: &str,
    ids: &[String],
    warehouse: &mut Warehouse,
) -> Result<WriterRun> {
    let seen = warehouse.read_then_restock(client, 1, ids).await?;
    let mut operations: Vec<BulkOperation<Value>> = Vec::new();
    for id in ids {
        let item = order_line(id, &seen[id])?;
        operations.push(match writer {
            "blind" => item.into(),
            _ => conditional(item, &seen[id]).into(),
        });
    }
    let bulk = client.bulk(BulkParts::Index(index)).body(operations);
    let response = bulk.send().await?;
    let status = response.status_code().as_u16();
    // The whole check of a writer that trusts the HTTP status:
    let believed_written = if response.status_code().is_success() {
        ids.len() // "all written"
    } else {
        0
    };

    // What the writer did not look at: the body.
    let body: Value = response.json().await?;
    let items = body["items"].as_array().cloned().unwrap_or_default();
    let conflicts: Vec<&Value> = items
        .iter()
        .filter(|i| i["index"]["status"] == 409)
        .collect();
    let (errors, n) = (&body["errors"], items.len());
    println!(
        "HTTP {status}, \"errors\": {errors}, {n} items, {} with status 409",
        conflicts.len()
    );
    if let (Some(first), Some(conflict)) = (items.first(), conflicts.first()) {
        println!("  items[0]: {first}\n  a 409:    {conflict}");
    }
    let (errors, first_conflicts) = (body["errors"] == true, conflicts.len());
    let bulk_sizes = vec![ids.len()];
    Ok(WriterRun {
        status,
        errors,
        first_conflicts,
        bulk_sizes,
        believed_written,
        ..Default::default()
    })
}
// ANCHOR_END: write_once

// ANCHOR: write_checked
/// The checked writer: every item read; only the conflicted or rejected
/// documents re-read and re-sent, a bounded number of times, with backoff.
async fn write_checked(
    client: &Elasticsearch,
    index: &str,
    ids: &[String],
    warehouse: &mut Warehouse,
    backoff: Backoff,
) -> Result<WriterRun> {
    let mut run = WriterRun::default();
    let mut pending: Vec<String> = ids.to_vec();
    for attempt in 1..=backoff.max_attempts {
        // Read what is still to be written, with _seq_no/_primary_term...
        let seen = warehouse
            .read_then_restock(client, attempt, &pending)
            .await?;
        // ...compute each new stock level from what was read, on condition...
        let mut operations = Vec::new();
        for id in &pending {
            operations
                .push(conditional(order_line(id, &seen[id])?, &seen[id]).into());
        }
        // ...and read the answer item by item.
        let answer = bulk::send(client, index, operations).await?;
        let mut again = Vec::new();
        for item in &answer.items {
            if item.status == 429 {
                // es_rejected_execution_exception: refused before it ran.
                again.push(item.id.clone());
                continue;
            }
            match item.outcome()? {
                Outcome::Written(_) => run.believed_written += 1,
                Outcome::Conflict(_) => again.push(item.id.clone()),
            }
        }
        if attempt == 1 {
            (run.status, run.errors) = (answer.status, answer.errors);
            run.first_conflicts = again.len();
        }
        let (n, errors) = (answer.items.len(), answer.errors);
        run.bulk_sizes.push(n);
        println!(
            "attempt {attempt}: HTTP {}, \"errors\": {errors}, {n} items, \
                  {} to send again: {again:?}",
            answer.status,
            again.len()
        );
        if again.is_empty() {
            return Ok(run);
        }
        tokio::time::sleep(backoff.delay(attempt)).await;
        pending = again; // only these are read and sent again
    }
    run.given_up = pending; // reported, never silently dropped
    let (n, attempts) = (run.given_up.len(), backoff.max_attempts);
    println!(
        "checked: gave up on {n} order lines after {attempts} attempts: {:?}",
        run.given_up
    );
    Ok(run)
}
// ANCHOR_END: write_checked

// ANCHOR: warehouse
/// The other client: between the order writer's read and its write, restocks
/// the products of [`RESTOCKED`] still pending, on `rounds` of the writer's
/// attempts (1 in the chapter), and remembers what it added.
struct Warehouse {
    rounds: u32,
    index: String,
    added: BTreeMap<String, i64>,
}

impl Warehouse {
    /// The order writer's read (`_mget`), then the restock that lands before its write.
    async fn read_then_restock(
        &mut self,
        client: &Elasticsearch,
        attempt: u32,
        pending: &[String],
    ) -> Result<BTreeMap<String, Versioned>> {
        let refs: Vec<&str> = pending.iter().map(String::as_str).collect();
        let seen = bulk::read_all(client, &self.index, &refs).await?;
        let restocked = RESTOCKED.map(product);
        for id in pending.iter().filter(|id| restocked.contains(id)) {
            if attempt <= self.rounds {
                let stock =
                    doc::read(client, &self.index, id).await?.number("stock")?;
                let restock = json!({ "stock": stock + RESTOCK });
                doc::put(client, &self.index, id, restock).await?;
                *self.added.entry(id.clone()).or_default() += RESTOCK;
            }
        }
        Ok(seen)
    }
}
// ANCHOR_END: warehouse

/// What one writer's run left behind: its first bulk's status, `errors` and
/// 409s; each bulk's size; the lines given up on, and those it counted written.
#[derive(Debug, Default)]
struct WriterRun {
    status: u16,
    errors: bool,
    first_conflicts: usize,
    bulk_sizes: Vec<usize>,
    given_up: Vec<String>,
    believed_written: usize,
}

/// Seeds a fresh `index`, lets `writer` place the order while the warehouse
/// restocks (on `rounds` of its attempts), then checks every product's stock.
async fn run_writer(
    cluster: &Cluster,
    index: &str,
    (writer, rounds, backoff): (&str, u32, Backoff),
    claims: &mut Claims,
) -> Result<WriterRun> {
    let (started, client) = (Instant::now(), &cluster.client);
    doc::fresh_index(client, index).await?;
    let ids: Vec<String> = (0..PRODUCTS).map(product).collect();
    for id in &ids {
        doc::put(client, index, id, json!({ "stock": INITIAL_STOCK })).await?;
    }
    let added = BTreeMap::new();
    let mut warehouse = Warehouse {
        rounds,
        index: index.to_string(),
        added,
    };

    let gap = if writer == "blind" { "" } else { "\n" }; // between writers
    println!(
        "{gap}== writer {writer}: an order for {PRODUCTS} products, 5 restocked"
    );
    let run = match writer {
        "checked" => {
            write_checked(client, index, &ids, &mut warehouse, backoff).await?
        }
        _ => write_once(client, index, writer, &ids, &mut warehouse).await?,
    };
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let finals = bulk::read_all(client, index, &refs).await?;
    let line = summary(writer, &run, &warehouse.added, &finals)?;
    let line = report::result(cluster, started.elapsed(), line);
    for (key, value) in expected(writer).as_object().into_iter().flatten() {
        let what = format!("{writer}: {key} is {value}, not {}", line[key]);
        claims.check(&line[key] == value, what);
    }
    let resent = run.bulk_sizes.iter().skip(1).all(|&n| n <= RESTOCKED.len());
    claims.check(resent, format!("{writer}: only conflicts sent again"));
    let accounted = run.believed_written + run.given_up.len() == PRODUCTS;
    let what = format!("{writer}: every line written or given up");
    claims.check(accounted || writer != "checked", what);
    Ok(run)
}

/// Every product against what it should hold (the initial stock, less the
/// order line unless it was given up, plus the restock), printed, and the
/// writer's result line.
fn summary(
    name: &str,
    run: &WriterRun,
    added: &BTreeMap<String, i64>,
    finals: &BTreeMap<String, Versioned>,
) -> Result<Value> {
    let (mut wrong, mut lost_restocks, mut lost_order_lines) = (0, 0, 0);
    for (id, seen) in finals {
        let added = added.get(id).copied().unwrap_or(0);
        let given_up = run.given_up.contains(id);
        let order = if given_up { 0 } else { ordered(id) };
        let (due, stock) = (INITIAL_STOCK - order + added, seen.number("stock")?);
        if stock != due {
            wrong += 1;
            lost_restocks += usize::from(stock == INITIAL_STOCK - order);
            lost_order_lines += usize::from(stock == INITIAL_STOCK + added);
            println!("  {id}: stock {stock}, should be {due}");
        }
    }
    let believed = run.believed_written;
    println!(
        "{name}: believes {believed} of {PRODUCTS} order lines written; {wrong} \
              products wrong ({lost_restocks} lost restocks, {lost_order_lines} lost lines)"
    );
    Ok(json!({
        "example": "bulk_conflicts", "writer": name, "products": PRODUCTS,
        "restocked": added.len(), "http_status": run.status, "errors": run.errors,
        "first_bulk_conflicts": run.first_conflicts, "bulk_sizes": run.bulk_sizes,
        "believed_written": believed, "given_up": run.given_up.len(),
        "wrong_products": wrong, "lost_restocks": lost_restocks,
        "lost_order_lines": lost_order_lines,
    }))
}

/// What the chapter says of each writer's run; the tests hold the recorded
/// run to it too.
fn expected(writer: &str) -> Value {
    match writer {
        "blind" => json!({
            "http_status": 200, "errors": false, "first_bulk_conflicts": 0,
            "believed_written": 20, "wrong_products": 5, "lost_restocks": 5,
        }),
        "unchecked" => json!({
            "http_status": 200, "errors": true, "first_bulk_conflicts": 5,
            "believed_written": 20, "wrong_products": 5, "lost_order_lines": 5,
        }),
        _ => json!({
            "http_status": 200, "errors": true, "first_bulk_conflicts": 5,
            "wrong_products": 0, "lost_restocks": 0, "lost_order_lines": 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded::{self, quoted};

    async fn cluster() -> Cluster {
        Cluster::connect(Needs::Core).await.expect("a cluster")
    }

    /// `writer` places the chapter's order on `index`, with the chapter's warehouse.
    async fn place(writer: &str, index: &str) -> (Claims, WriterRun) {
        let mut claims = Claims::new();
        let how = (writer, 1, Backoff::default());
        let run = run_writer(&cluster().await, index, how, &mut claims)
            .await
            .expect("the writer runs");
        (claims, run)
    }

    /// Reading every item and retrying only the conflicted documents: every product right,
    /// in two bulks (20 items, then the 5 that conflicted).
    #[tokio::test]
    async fn a_checked_bulk_retries_only_the_conflicts_and_loses_nothing() {
        let (claims, run) = place("checked", "test-bulk-checked").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(run.bulk_sizes, [PRODUCTS, RESTOCKED.len()]);
        assert!(run.given_up.is_empty());
    }

    /// A warehouse that restocks before every attempt: the checked writer stops after its
    /// bound, names the five lines it gave up on, and every other product is still right.
    #[tokio::test]
    async fn the_checked_bulk_gives_up_after_its_bound_and_says_on_what() {
        let mut claims = Claims::new();
        let backoff = Backoff {
            max_attempts: 3,
            ..Backoff::default()
        };
        let how = ("checked", u32::MAX, backoff);
        let run = run_writer(&cluster().await, "test-bulk-bound", how, &mut claims)
            .await
            .expect("the writer runs");
        assert_eq!(run.bulk_sizes, [PRODUCTS, 5, 5]);
        assert_eq!(run.given_up.len(), RESTOCKED.len());
        assert_eq!(run.believed_written, PRODUCTS - RESTOCKED.len());
        // "Every product right" holds with the given-up lines counted as not written.
        assert!(claims.all_hold(), "{claims:?}");
    }

    /// The recorded run is the one chapter 12 tells: blind loses five restocks in an HTTP 200
    /// without errors, unchecked drops five order lines while believing twenty written,
    /// checked ends right after two bulks of 20 and 5 items.
    #[test]
    fn the_recorded_run_is_the_one_the_chapter_tells() {
        let run = |writer| recorded::result("bulk_conflicts", "writer", writer);
        let raw = recorded::output("bulk_conflicts");
        assert!(
            raw.contains(r#""status":409,"error":{"type":"version_conflict_engine_exception""#),
            "the bulk chapter shows a raw 409 item"
        );
        assert!(!raw.contains("RESULT") && !raw.contains("claim holds"));
        let blind = run("blind");
        assert_eq!(
            (blind["http_status"].as_u64(), blind["errors"].as_bool()),
            (Some(200), Some(false))
        );
        assert_eq!(blind["lost_restocks"], 5);
        let unchecked = run("unchecked");
        assert_eq!(
            (
                unchecked["http_status"].as_u64(),
                unchecked["errors"].as_bool()
            ),
            (Some(200), Some(true))
        );
        assert_eq!(unchecked["first_bulk_conflicts"], 5);
        assert_eq!(unchecked["believed_written"], 20);
        assert_eq!(unchecked["lost_order_lines"], 5);
        let checked = run("checked");
        assert_eq!(checked["first_bulk_conflicts"], 5);
        assert_eq!(checked["bulk_sizes"], json!([20, 5]));
        assert_eq!(
            (
                checked["wrong_products"].as_u64(),
                checked["given_up"].as_u64()
            ),
            (Some(0), Some(0))
        );
        for writer in ["blind", "unchecked", "checked"] {
            let line = run(writer);
            for (key, value) in expected(writer).as_object().unwrap() {
                assert_eq!(&line[key], value, "{writer}: {key}");
            }
        }
    }

    /// Every number chapter 12 quotes from the run is the recorded one.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch12-00-bulk.md");
        let output = recorded::output("bulk_conflicts");
        let said = |pattern| quoted(&chapter, pattern).to_lowercase();
        let run = |writer| recorded::result("bulk_conflicts", "writer", writer);
        let words = "no one two three four five six seven eight nine ten eleven twelve \
                     thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty";
        let word =
            |n: &Value| words.split(' ').nth(n.as_u64().unwrap() as usize).unwrap();
        let (blind, unchecked, checked) =
            (run("blind"), run("unchecked"), run("checked"));
        assert_eq!(
            said(r"(\w+) products hold \d+ units"),
            word(&blind["products"])
        );
        assert_eq!(
            said(r"products hold (\d+) units"),
            INITIAL_STOCK.to_string()
        );
        assert_eq!(
            said(r"restocks (\w+) of the products"),
            word(&blind["restocked"])
        );
        assert_eq!(said(r"of the products, \+(\d+) each"), RESTOCK.to_string());
        let status = blind["http_status"].to_string();
        assert_eq!(said(r"\*\*blind\.\*\* One request, HTTP (\d+)"), status);
        let written = said(r#"`"errors": false`, (\w+) items written"#);
        assert_eq!(written, word(&blind["believed_written"]));
        let lost = said(r"The (\w+) products the\s+warehouse restocked");
        assert_eq!(lost, word(&blind["lost_restocks"]));
        let conflicts = said(r"and (\w+) of the twenty items are 409s");
        assert_eq!(conflicts, word(&unchecked["first_bulk_conflicts"]));
        let believed = said(r"believed all (\w+) lines were written");
        assert_eq!(believed, word(&unchecked["believed_written"]));
        let missing = said(r"(\w+) order lines are missing");
        assert_eq!(missing, word(&unchecked["lost_order_lines"]));
        let held = said(r"products still\s+hold (\d+)");
        assert!(
            output.contains(&format!("stock {held}, should be")),
            "{held}"
        );
        let second = said(r"a second bulk\s+of (\w+) items");
        assert_eq!(second, word(&checked["bulk_sizes"][1]));
        let sizes = &checked["bulk_sizes"];
        let done = sizes[0].as_u64().unwrap() - sizes[1].as_u64().unwrap();
        assert_eq!(
            said(r"The (\w+) written items are\s+done"),
            word(&json!(done))
        );
    }
}
