//! Chapter 6, exercise 2: a withdrawal that the script itself refuses when the balance does
//! not cover it.

use anyhow::{Result, bail};
use elasticsearch::{Elasticsearch, UpdateParts};
use esbook::doc::{self, Outcome};
use serde_json::json;

// ANCHOR: solution
/// The check and the change happen in one script, on the document as the shard
/// holds it when the update runs: `ctx.op = 'none'` leaves it untouched.
const WITHDRAW: &str = "
    if (ctx._source.balance < params.amount) {
        ctx.op = 'none';
    } else {
        ctx._source.balance -= params.amount;
    }";

/// Withdraws `amount` from account `id` if its balance covers it; `true` if it did
/// (`"result": "updated"`), `false` if the script refused (`"result": "noop"`).
pub async fn withdraw(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    amount: i64,
) -> Result<bool> {
    let response = client
        .update(UpdateParts::IndexId(index, id))
        .retry_on_conflict(10)
        .body(json!({
            "script": { "source": WITHDRAW, "params": { "amount": amount } }
        }))
        .send()
        .await?;
    match doc::outcome(response).await? {
        Outcome::Written(answer) => Ok(answer["result"] == "updated"),
        Outcome::Conflict(error) => {
            bail!("still a conflict after ten server-side retries: {error}")
        }
    }
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};

    /// Ten clients withdraw 30 at once from a balance of 100: exactly three are paid, the
    /// other seven are noops, and the balance ends at 10, never below zero.
    #[tokio::test]
    async fn no_overdraft_however_many_withdraw_at_once() -> Result<()> {
        let cluster = Cluster::connect(Needs::Scripting).await?;
        let (client, index) = (&cluster.client, "ex-ch06-overdraft");
        doc::fresh_index(client, index).await?;
        doc::put(client, index, "acct", json!({ "balance": 100 })).await?;

        let clients: Vec<_> = (0..10)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(
                    async move { withdraw(&client, index, "acct", 30).await },
                )
            })
            .collect();
        let mut paid = 0;
        for each in clients {
            paid += usize::from(each.await??);
        }
        assert_eq!(paid, 3);
        assert_eq!(
            doc::read(client, index, "acct").await?.number("balance")?,
            10
        );
        assert!(!withdraw(client, index, "acct", 30).await?);
        Ok(())
    }
}
