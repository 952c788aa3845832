//! Chapter 11: a partial update that cannot lose a concurrent withdrawal.

use anyhow::Result;
use elasticsearch::{Elasticsearch, UpdateParts};
use esbook::doc;
use esbook::retry::{Backoff, Tally, until_written};
use serde_json::json;

// ANCHOR: solution
/// Withdraws `amount` with a partial document (`{"doc": {"balance": ...}}`) on the
/// condition of the read it was computed from; on a 409, reads again and recomputes.
/// The fields it does not send (an e-mail address another client changes) are merged
/// as they are.
pub async fn withdraw(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    amount: i64,
) -> Result<Tally> {
    until_written(Backoff::default(), || async {
        let seen = doc::read(client, index, id).await?;
        let balance = seen.number("balance")? - amount;
        let response = client
            .update(UpdateParts::IndexId(index, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "doc": { "balance": balance } }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};

    /// Four clients withdraw 10, ten times each, from 1000 at once, while the e-mail
    /// address changes: the balance is exactly 600 and the new address is kept.
    #[tokio::test]
    async fn every_withdrawal_counts_and_other_fields_survive() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch11-withdraw");
        doc::fresh_index(client, index).await?;
        let account = json!({ "balance": 1000, "email": "old@example.com" });
        doc::put(client, index, "12345", account).await?;

        let clients: Vec<_> = (0..4)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    for _ in 0..10 {
                        tally += withdraw(&client, index, "12345", 10).await?;
                    }
                    anyhow::Ok(tally)
                })
            })
            .collect();
        let email = client
            .update(UpdateParts::IndexId(index, "12345"))
            .retry_on_conflict(10)
            .body(json!({ "doc": { "email": "new@example.com" } }))
            .send()
            .await?;
        doc::expect_success(email, "changing the e-mail address").await?;
        let mut tally = Tally::default();
        for each in clients {
            tally += each.await??;
        }
        assert_eq!((tally.acknowledged, tally.failed), (40, 0));
        let account = doc::read(client, index, "12345").await?;
        assert_eq!(account.number("balance")?, 600);
        assert_eq!(account.source["email"], "new@example.com");
        Ok(())
    }
}
