//! Chapter 20: the debit step of a transfer, refused when the balance does not cover it.

use anyhow::{Result, bail};
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc::{self, Outcome};
use esbook::retry::Backoff;
use serde_json::json;

// ANCHOR: solution
/// What the debit step came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Debit {
    Applied,
    /// The account already lists the transfer: an earlier attempt applied it.
    AlreadyApplied,
    /// The balance, as read, does not cover the amount: mark the transfer failed.
    Refused,
}

/// Debits `amount` from `account` for `transfer`. The check and the debit are one OCC
/// write, so two transfers cannot both spend the same last 100: the second one's write
/// conflicts, and its fresh read refuses it.
pub async fn debit(
    client: &Elasticsearch,
    (index, account): (&str, &str),
    transfer: &str,
    amount: i64,
    backoff: Backoff,
) -> Result<Debit> {
    for attempt in 1..=backoff.max_attempts {
        let seen = doc::read(client, index, account).await?;
        let applied = seen.source["applied"].as_array().cloned();
        let mut applied = applied.unwrap_or_default();
        if applied.contains(&json!(transfer)) {
            return Ok(Debit::AlreadyApplied);
        }
        let balance = seen.number("balance")?;
        if balance < amount {
            return Ok(Debit::Refused);
        }
        applied.push(json!(transfer));
        let response = client
            .index(IndexParts::IndexId(index, account))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "balance": balance - amount, "applied": applied }))
            .send()
            .await?;
        if let Outcome::Written(_) = doc::outcome(response).await? {
            return Ok(Debit::Applied);
        }
        tokio::time::sleep(backoff.delay(attempt)).await;
    }
    bail!(
        "{transfer}: still conflicting after {} attempts",
        backoff.max_attempts
    )
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};

    /// Alice has 150; four transfers of 100 debit her at once: exactly one is applied,
    /// three are refused, the balance is 50, and the applied one sent again changes
    /// nothing.
    #[tokio::test]
    async fn the_last_hundred_is_spent_once() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch20-debit");
        doc::fresh_index(client, index).await?;
        doc::put(
            client,
            index,
            "alice",
            json!({ "balance": 150, "applied": [] }),
        )
        .await?;

        let transfers: Vec<_> = ["t-1", "t-2", "t-3", "t-4"]
            .into_iter()
            .map(|transfer| {
                let client = client.clone();
                tokio::spawn(async move {
                    let to = (index, "alice");
                    let done =
                        debit(&client, to, transfer, 100, Backoff::default());
                    anyhow::Ok((transfer, done.await?))
                })
            })
            .collect();
        let mut applied = Vec::new();
        let mut refused = 0;
        for each in transfers {
            match each.await?? {
                (transfer, Debit::Applied) => applied.push(transfer),
                (_, Debit::Refused) => refused += 1,
                (transfer, other) => panic!("{transfer}: {other:?}"),
            }
        }
        assert_eq!((applied.len(), refused), (1, 3));
        let alice = doc::read(client, index, "alice").await?;
        assert_eq!(alice.number("balance")?, 50);
        let again = debit(
            client,
            (index, "alice"),
            applied[0],
            100,
            Backoff::default(),
        );
        assert_eq!(again.await?, Debit::AlreadyApplied);
        Ok(())
    }
}
