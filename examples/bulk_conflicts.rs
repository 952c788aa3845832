//! Chapter 12: bulk writes with conditions.
//!
//! Twenty products hold 100 units each. An order service reserves a few units of every product
//! in one `_bulk` request: it reads all twenty (`_mget`, with `_seq_no`/`_primary_term`),
//! computes the new stock levels, and writes them back. Between its read and its write, the
//! warehouse restocks five of the products (+10 each). The interleaving is fixed, as in chapter
//! 3, so the race happens every run. Three order writers meet it:
//!
//! - `blind`: bulk `index` items without conditions. HTTP 200, `"errors": false`, and the five
//!   restocks are gone.
//! - `unchecked`: every item carries `if_seq_no`/`if_primary_term`, but the writer only looks at
//!   the HTTP status. HTTP 200 with `"errors": true`: five items are 409s, and the writer
//!   reports success while five of its order lines were never written.
//! - `checked`: reads every item, re-reads only the conflicted documents, retries only those
//!   (bounded, with backoff and jitter), and ends with every product exactly where it should be.
//!
//! Then: which bulk actions take a condition (`index`, `update`, `delete`: each conflict is a
//! per-item 409), and which does not (`create`: the whole request is refused with a 400).
//!
//! Run it: `cargo run --example bulk_conflicts`. It checks the final stock of every product
//! against what it should be, and exits non-zero if the blind and unchecked writers did not lose
//! what the chapter says they lose, or if the checked writer lost anything.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use elasticsearch::http::request::JsonBody;
use elasticsearch::{BulkIndexOperation, BulkOperation, BulkParts, Elasticsearch};
use esbook::answer::Answer;
use esbook::bulk::{self, BulkAnswer};
use esbook::doc::{self, Outcome, Versioned};
use harness::report::{self, Claims};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs};
use serde_json::{Value, json};

const INDEX: &str = "stock";
const PRODUCTS: usize = 20;
const INITIAL_STOCK: i64 = 100;
/// The products the warehouse restocks between the order service's read and its write.
const RESTOCKED: [usize; 5] = [3, 7, 11, 15, 19];
const RESTOCK: i64 = 10;

const USAGE: &str = "usage: cargo run --example bulk_conflicts (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let mut claims = Claims::new();
        for writer in Writer::ALL {
            run_writer(&cluster, INDEX, writer, &mut claims).await?;
        }
        which_actions_take_a_condition(&cluster, INDEX, &mut claims).await?;
        Ok(claims)
    })
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Blind,
    Unchecked,
    Checked,
}

impl Writer {
    const ALL: [Writer; 3] = [Writer::Blind, Writer::Unchecked, Writer::Checked];

    fn name(self) -> &'static str {
        match self {
            Writer::Blind => "blind",
            Writer::Unchecked => "unchecked",
            Writer::Checked => "checked",
        }
    }
}

fn product(i: usize) -> String {
    format!("product-{i:02}")
}

/// How many units the order reserves of product `id`: 1, 2 or 3.
fn ordered(id: &str) -> i64 {
    let i: i64 = id.trim_start_matches("product-").parse().unwrap_or(0);
    1 + i % 3
}

/// The order line for product `id`: its stock as `seen`, less what the order reserves.
fn order_line(id: &str, seen: &Versioned) -> Result<BulkIndexOperation<Value>> {
    let stock = seen.number("stock")? - ordered(id);
    Ok(BulkOperation::index(json!({ "stock": stock })).id(id))
}

/// The other client: restocks some products with OCC single-document writes, at the moment the
/// story says, and remembers what it added so the expected stock can be computed.
struct Warehouse {
    client: Elasticsearch,
    index: String,
    /// On how many of the order writer's attempts it restocks (1 in the chapter: between the
    /// first read and the first write).
    rounds: u32,
    added: BTreeMap<String, i64>,
}

impl Warehouse {
    /// Called by the order writer between each read and the write that follows it.
    async fn meanwhile(&mut self, attempt: u32, pending: &[String]) -> Result<()> {
        if attempt > self.rounds {
            return Ok(());
        }
        for i in RESTOCKED {
            let id = product(i);
            if !pending.contains(&id) {
                continue;
            }
            let seen = doc::read(&self.client, &self.index, &id).await?;
            let response = self
                .client
                .index(elasticsearch::IndexParts::IndexId(&self.index, &id))
                .if_seq_no(seen.seq_no)
                .if_primary_term(seen.primary_term)
                .body(json!({ "stock": seen.number("stock")? + RESTOCK }))
                .send()
                .await?;
            let Outcome::Written(_) = doc::outcome(response).await? else {
                bail!(
                    "the warehouse's restock of {id} conflicted: nobody else writes now"
                );
            };
            *self.added.entry(id).or_default() += RESTOCK;
        }
        Ok(())
    }
}

/// What one order writer's run left behind.
#[derive(Debug, Default)]
struct WriterRun {
    /// HTTP status of the first bulk request, and its `errors` flag.
    status: u16,
    errors: bool,
    /// Items of the first bulk that came back 409.
    first_conflicts: usize,
    /// Bulk requests sent, and the items each carried.
    bulk_sizes: Vec<usize>,
    /// Order lines the writer gave up on after its retry bound (reported, not silent).
    given_up: Vec<String>,
    /// What the writer itself believed: order lines it counted as written.
    believed_written: usize,
}

/// Seeds a fresh `index`, lets `writer` place the order while the warehouse restocks, then
/// checks every product's stock against what it should be.
async fn run_writer(
    cluster: &Cluster,
    index: &str,
    writer: Writer,
    claims: &mut Claims,
) -> Result<WriterRun> {
    run_writer_with(cluster, index, writer, 1, Backoff::default(), claims).await
}

async fn run_writer_with(
    cluster: &Cluster,
    index: &str,
    writer: Writer,
    warehouse_rounds: u32,
    backoff: Backoff,
    claims: &mut Claims,
) -> Result<WriterRun> {
    let started = Instant::now();
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;
    let ids: Vec<String> = (0..PRODUCTS).map(product).collect();
    for id in &ids {
        doc::put(client, index, id, json!({ "stock": INITIAL_STOCK })).await?;
    }
    let mut warehouse = Warehouse {
        client: client.clone(),
        index: index.to_string(),
        rounds: warehouse_rounds,
        added: BTreeMap::new(),
    };
    println!(
        "== writer {}: an order for all {PRODUCTS} products, while the warehouse restocks {} of them",
        writer.name(),
        RESTOCKED.len()
    );
    let run = match writer {
        Writer::Blind | Writer::Unchecked => {
            write_once(client, index, writer, &ids, &mut warehouse).await?
        }
        Writer::Checked => {
            write_checked(client, index, &ids, &mut warehouse, backoff).await?
        }
    };

    // Every product, against what it should hold: the initial stock, minus the order line if
    // it was written, plus what the warehouse added.
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let finals = bulk::read_all(client, index, &refs).await?;
    let mut wrong = Vec::new();
    let (mut lost_restocks, mut lost_order_lines) = (0, 0);
    for id in &ids {
        let added = warehouse.added.get(id).copied().unwrap_or(0);
        let order = if run.given_up.contains(id) {
            0
        } else {
            ordered(id)
        };
        let due = INITIAL_STOCK - order + added;
        let stock = finals[id].number("stock")?;
        if stock != due {
            wrong.push(id.clone());
            if stock == INITIAL_STOCK - order {
                lost_restocks += 1;
            }
            if stock == INITIAL_STOCK + added {
                lost_order_lines += 1;
            }
            println!("  {id}: stock {stock}, should be {due}");
        }
    }
    println!(
        "{}: the writer believes {} of {PRODUCTS} order lines were written; {} products are wrong \
         ({lost_restocks} lost restocks, {lost_order_lines} lost order lines)",
        writer.name(),
        run.believed_written,
        wrong.len()
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "bulk_conflicts",
            "writer": writer.name(),
            "products": PRODUCTS,
            "restocked": warehouse.added.len(),
            "http_status": run.status,
            "errors": run.errors,
            "first_bulk_conflicts": run.first_conflicts,
            "bulk_sizes": run.bulk_sizes,
            "believed_written": run.believed_written,
            "given_up": run.given_up.len(),
            "wrong_products": wrong.len(),
            "lost_restocks": lost_restocks,
            "lost_order_lines": lost_order_lines,
        }),
    );

    let restocked = RESTOCKED.len();
    match writer {
        Writer::Blind => {
            claims.check(
                run.status == 200 && !run.errors,
                "blind: HTTP 200 and \"errors\": false, every item written",
            );
            claims.check(
                lost_restocks == restocked && wrong.len() == restocked,
                format!(
                    "blind: the {restocked} restocks were overwritten, without any error"
                ),
            );
        }
        Writer::Unchecked => {
            claims.check(
                run.status == 200 && run.errors && run.first_conflicts == restocked,
                format!(
                    "unchecked: HTTP 200 with \"errors\": true and {restocked} items that are 409s"
                ),
            );
            claims.check(
                run.believed_written == PRODUCTS
                    && lost_order_lines == restocked
                    && wrong.len() == restocked,
                format!(
                    "unchecked: the writer believes all {PRODUCTS} lines were written; \
                     {restocked} were not, and nobody noticed"
                ),
            );
        }
        Writer::Checked => {
            claims.check(
                run.status == 200 && run.errors && run.first_conflicts == restocked,
                format!(
                    "checked: the first bulk had the same {restocked} conflicts"
                ),
            );
            claims.check(
                run.bulk_sizes.iter().skip(1).all(|&n| n <= restocked),
                "checked: only the conflicted documents were re-read and sent again",
            );
            claims.check(
                wrong.is_empty(),
                format!(
                    "checked: every one of the {PRODUCTS} products holds exactly what it should"
                ),
            );
            claims.check(
                run.believed_written + run.given_up.len() == PRODUCTS,
                "checked: every order line was either written or reported as given up",
            );
        }
    }
    println!();
    Ok(run)
}

/// The blind and unchecked writers: one read, one bulk, and a look at the HTTP status only.
async fn write_once(
    client: &Elasticsearch,
    index: &str,
    writer: Writer,
    ids: &[String],
    warehouse: &mut Warehouse,
) -> Result<WriterRun> {
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let seen = bulk::read_all(client, index, &refs).await?;
    warehouse.meanwhile(1, ids).await?;
    let operations: Vec<BulkOperation<Value>> = ids
        .iter()
        .map(|id| {
            let item = order_line(id, &seen[id])?;
            Ok(match writer {
                Writer::Blind => item.into(),
                _ => conditional(item, &seen[id]).into(),
            })
        })
        .collect::<Result<_>>()?;

    // ANCHOR: unchecked
    let response = client
        .bulk(BulkParts::Index(index))
        .body(operations)
        .send()
        .await?;
    let status = response.status_code().as_u16();
    // The whole check of a writer that trusts the HTTP status:
    let believed_written = if response.status_code().is_success() {
        ids.len() // "all written"
    } else {
        0
    };
    // ANCHOR_END: unchecked

    // What the writer did not look at: the body.
    let body: Value = response.json().await?;
    let items = body["items"].as_array().cloned().unwrap_or_default();
    let conflicts: Vec<&Value> = items
        .iter()
        .filter(|item| item["index"]["status"] == 409)
        .collect();
    println!(
        "HTTP {status}, \"errors\": {}, {} items, {} of them with status 409",
        body["errors"],
        items.len(),
        conflicts.len()
    );
    if let (Some(first), Some(conflict)) = (items.first(), conflicts.first()) {
        println!("  items[0]: {first}");
        println!("  a 409:    {conflict}");
    }
    Ok(WriterRun {
        status,
        errors: body["errors"] == true,
        first_conflicts: conflicts.len(),
        bulk_sizes: vec![ids.len()],
        given_up: Vec::new(),
        believed_written,
    })
}

// ANCHOR: conditional
/// The item carries the `_seq_no`/`_primary_term` its new value was computed from.
fn conditional(
    item: BulkIndexOperation<Value>,
    seen: &Versioned,
) -> BulkIndexOperation<Value> {
    item.if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
}
// ANCHOR_END: conditional

/// The checked writer: every item read; only the conflicted documents re-read and re-sent, a
/// bounded number of times, with backoff and jitter.
async fn write_checked(
    client: &Elasticsearch,
    index: &str,
    ids: &[String],
    warehouse: &mut Warehouse,
    backoff: Backoff,
) -> Result<WriterRun> {
    let mut run = WriterRun::default();
    // ANCHOR: checked
    let mut pending: Vec<String> = ids.to_vec();
    for attempt in 1..=backoff.max_attempts {
        // Read what is still to be written, with _seq_no/_primary_term...
        let refs: Vec<&str> = pending.iter().map(String::as_str).collect();
        let seen = bulk::read_all(client, index, &refs).await?;
        warehouse.meanwhile(attempt, &pending).await?;
        // ...compute each new stock level from what was read, on condition...
        let operations = pending
            .iter()
            .map(|id| Ok(conditional(order_line(id, &seen[id])?, &seen[id]).into()))
            .collect::<Result<Vec<_>>>()?;
        // ...and read the answer item by item.
        let answer = bulk::send(client, index, operations).await?;
        let mut conflicted = Vec::new();
        for item in &answer.items {
            match item.outcome()? {
                Outcome::Written(_) => run.believed_written += 1,
                Outcome::Conflict(_) => conflicted.push(item.id.clone()),
            }
        }
        record(&mut run, attempt, &answer, &conflicted);
        if conflicted.is_empty() {
            return Ok(run);
        }
        tokio::time::sleep(backoff.delay(attempt)).await;
        pending = conflicted; // only these are read and sent again
    }
    run.given_up = pending; // reported, never silently dropped
    // ANCHOR_END: checked
    println!(
        "checked: gave up on {} order lines after {} attempts: {:?}",
        run.given_up.len(),
        backoff.max_attempts,
        run.given_up
    );
    Ok(run)
}

/// Notes what one bulk of the checked writer came back with, and prints it.
fn record(
    run: &mut WriterRun,
    attempt: u32,
    answer: &BulkAnswer,
    conflicted: &[String],
) {
    if attempt == 1 {
        run.status = answer.status;
        run.errors = answer.errors;
        run.first_conflicts = conflicted.len();
    }
    run.bulk_sizes.push(answer.items.len());
    println!(
        "attempt {attempt}: HTTP {}, \"errors\": {}, {} items: {} written, {} conflicts {:?}",
        answer.status,
        answer.errors,
        answer.items.len(),
        answer.items.len() - conflicted.len(),
        conflicted.len(),
        conflicted
    );
}

/// `index`, `update` and `delete` items take `if_seq_no`/`if_primary_term`, each conflict a
/// 409 of its own; a `create` item with them makes the server refuse the whole request.
async fn which_actions_take_a_condition(
    cluster: &Cluster,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let client = &cluster.client;
    println!("== which bulk actions take a condition");
    doc::fresh_index(client, index).await?;
    for id in ["a", "b", "c"] {
        doc::put(client, index, id, json!({ "stock": 1 })).await?;
        doc::put(client, index, id, json!({ "stock": 2 })).await?; // moves it past _seq_no 0
    }
    // Each item names a state that is gone: _seq_no 0 of its document.
    // ANCHOR: actions
    let stale: Vec<BulkOperation<Value>> = vec![
        BulkOperation::index(json!({ "stock": 0 }))
            .id("a")
            .if_seq_no(0)
            .if_primary_term(1)
            .into(),
        BulkOperation::update("b", json!({ "doc": { "stock": 0 } }))
            .if_seq_no(0)
            .if_primary_term(1)
            .into(),
        BulkOperation::delete("c")
            .if_seq_no(0)
            .if_primary_term(1)
            .into(),
    ];
    // ANCHOR_END: actions
    let answer = bulk::send(client, index, stale).await?;
    for item in &answer.items {
        println!(
            "{} {}: HTTP {} {}",
            item.action,
            item.id,
            item.status,
            item.body["error"]["type"].as_str().unwrap_or("")
        );
    }
    let actions: Vec<&str> =
        answer.items.iter().map(|i| i.action.as_str()).collect();
    claims.check(
        answer.status == 200
            && actions == ["index", "update", "delete"]
            && answer.items.iter().all(|i| i.is_conflict()),
        "index, update and delete items each take if_seq_no: three per-item 409s in an HTTP 200",
    );

    // The crate's typed `create` item has no if_seq_no (the server would refuse it), so this
    // request is written out by hand.
    let create: Vec<JsonBody<Value>> = vec![
        json!({ "create": { "_id": "d", "if_seq_no": 0, "if_primary_term": 1 } })
            .into(),
        json!({ "stock": 1 }).into(),
        json!({ "index": { "_id": "e" } }).into(),
        json!({ "stock": 1 }).into(),
    ];
    let response = client
        .bulk(BulkParts::Index(index))
        .body(create)
        .send()
        .await?;
    let refused = Answer::of(response).await?;
    println!(
        "a bulk with a conditional create (and a plain index): {}",
        refused.summary()
    );
    let e_exists = client
        .exists(elasticsearch::ExistsParts::IndexId(index, "e"))
        .send()
        .await?
        .status_code()
        .is_success();
    claims.check(
        refused.status == 400
            && refused
                .reason()
                .contains("create operations do not support compare and set")
            && !e_exists,
        "a create item with if_seq_no is refused, and with it the whole request (HTTP 400): \
         the plain index item beside it was not written either",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn cluster() -> Cluster {
        Cluster::connect(Needs::Core).await.expect("a cluster")
    }

    /// `writer` places the chapter's order on `index`, with the chapter's warehouse.
    async fn place(writer: Writer, index: &str) -> (Claims, WriterRun) {
        let mut claims = Claims::new();
        let run = run_writer(&cluster().await, index, writer, &mut claims)
            .await
            .expect("the writer runs");
        (claims, run)
    }

    /// Unconditional bulk items overwrite the warehouse's restocks: HTTP 200, no error, five
    /// products wrong.
    #[tokio::test]
    async fn a_blind_bulk_loses_the_restocks_without_an_error() {
        let (claims, run) = place(Writer::Blind, "test-bulk-blind").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!((run.status, run.errors), (200, false));
    }

    /// Conditional items whose answers nobody reads: an Ok response holding five 409s, and
    /// five order lines missing while the writer counts twenty.
    #[tokio::test]
    async fn an_unchecked_conditional_bulk_drops_lines_silently() {
        let (claims, run) = place(Writer::Unchecked, "test-bulk-unchecked").await;
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(run.first_conflicts, RESTOCKED.len());
        assert_eq!(run.believed_written, PRODUCTS);
    }

    /// Reading every item and retrying only the conflicted documents: every product right,
    /// in two bulks (20 items, then the 5 that conflicted).
    #[tokio::test]
    async fn a_checked_bulk_retries_only_the_conflicts_and_loses_nothing() {
        let (claims, run) = place(Writer::Checked, "test-bulk-checked").await;
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
        let run = run_writer_with(
            &cluster().await,
            "test-bulk-bound",
            Writer::Checked,
            u32::MAX,
            backoff,
            &mut claims,
        )
        .await
        .expect("the writer runs");
        assert_eq!(run.bulk_sizes, [PRODUCTS, 5, 5]);
        assert_eq!(run.given_up.len(), RESTOCKED.len());
        assert_eq!(run.believed_written, PRODUCTS - RESTOCKED.len());
        // "Every product right" holds with the given-up lines counted as not written.
        assert!(claims.all_hold(), "{claims:?}");
    }

    /// index, update and delete items take a condition; a create item with one makes the whole
    /// bulk a 400.
    #[tokio::test]
    async fn create_items_refuse_conditions_and_sink_the_whole_bulk() {
        let mut claims = Claims::new();
        which_actions_take_a_condition(
            &cluster().await,
            "test-bulk-actions",
            &mut claims,
        )
        .await
        .expect("the requests run");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
