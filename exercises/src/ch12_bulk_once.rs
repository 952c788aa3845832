//! Chapter 12: a bulk reservation that is safe to send again, after a conflict or after an
//! answer that never came.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use elasticsearch::{BulkOperation, Elasticsearch};
use esbook::bulk;
use esbook::doc::Outcome;
use esbook::retry::Backoff;
use serde_json::{Value, json};

// ANCHOR: solution
/// What a reservation did to its products.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    /// Lines written by this call.
    pub written: usize,
    /// Lines found already applied (they list the order): a retry of a bulk that landed.
    pub already: usize,
    /// Item conflicts met and retried from a fresh read.
    pub conflicts: usize,
}

/// Reserves `units` of each product for `order`. Each product lists the orders it
/// has applied, written together with its stock on the condition of the read; so a
/// line is applied at most once however often the reservation is sent.
pub async fn reserve(
    client: &Elasticsearch,
    index: &str,
    order: &str,
    lines: &BTreeMap<&str, i64>,
    backoff: Backoff,
) -> Result<Reserved> {
    let mut done = Reserved::default();
    let mut pending: Vec<&str> = lines.keys().copied().collect();
    for attempt in 1..=backoff.max_attempts {
        let seen = bulk::read_all(client, index, &pending).await?;
        let mut operations: Vec<BulkOperation<Value>> = Vec::new();
        for (id, product) in &seen {
            let orders = product.source["orders"].as_array().cloned();
            let mut orders = orders.unwrap_or_default();
            if orders.contains(&json!(order)) {
                done.already += 1;
                continue;
            }
            orders.push(json!(order));
            let stock = product.number("stock")? - lines[id.as_str()];
            let source = json!({ "stock": stock, "orders": orders });
            let operation = BulkOperation::index(source)
                .id(id.as_str())
                .if_seq_no(product.seq_no)
                .if_primary_term(product.primary_term);
            operations.push(operation.into());
        }
        if operations.is_empty() {
            return Ok(done);
        }
        let answer = bulk::send(client, index, operations).await?;
        pending.clear();
        for item in &answer.items {
            match item.outcome()? {
                Outcome::Written(_) => done.written += 1,
                Outcome::Conflict(_) => {
                    done.conflicts += 1;
                    let id = lines.keys().find(|id| **id == item.id);
                    pending.extend(id.copied());
                }
            }
        }
        if pending.is_empty() {
            return Ok(done);
        }
        tokio::time::sleep(backoff.delay(attempt)).await;
    }
    bail!("order {order}: lines {pending:?} still conflict; given up")
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::doc;
    use esbook::{Cluster, Needs};

    /// Two orders reserve the same five products at once, then the first is sent again
    /// (its answer "was lost"): every stock level is exactly 100 minus both orders, and
    /// the resend writes nothing.
    #[tokio::test]
    async fn concurrent_orders_exact_and_a_resend_changes_nothing() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch12-bulk");
        doc::fresh_index(client, index).await?;
        let products = ["p-0", "p-1", "p-2", "p-3", "p-4"];
        for id in products {
            let product = json!({ "stock": 100, "orders": [] });
            doc::put(client, index, id, product).await?;
        }
        let first: BTreeMap<&str, i64> =
            products.iter().map(|id| (*id, 2)).collect();
        let second: BTreeMap<&str, i64> =
            products.iter().map(|id| (*id, 3)).collect();

        let (one, two) = tokio::join!(
            reserve(client, index, "order-1", &first, Backoff::default()),
            reserve(client, index, "order-2", &second, Backoff::default()),
        );
        let (one, two) = (one?, two?);
        assert_eq!((one.written, two.written), (5, 5));
        let again = reserve(client, index, "order-1", &first, Backoff::default());
        let expected = Reserved {
            already: 5,
            ..Reserved::default()
        };
        assert_eq!(again.await?, expected);
        let seen = bulk::read_all(client, index, &products).await?;
        for product in seen.values() {
            assert_eq!(product.number("stock")?, 95);
            assert_eq!(product.source["orders"].as_array().map(Vec::len), Some(2));
        }
        Ok(())
    }
}
