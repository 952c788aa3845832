//! Chapter 4: a withdrawal with OCC, written with the `elasticsearch` crate alone, that
//! refuses to overdraw the account.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use elasticsearch::{Elasticsearch, GetParts, IndexParts};
use serde_json::{Value, json};

// ANCHOR: solution
/// Withdraws `amount` from account `id` if its balance covers it: `true` if it did,
/// `false` if the balance was too low. The check is made on a read, and the write
/// is conditional on that read, so no other withdrawal can slip in between.
pub async fn withdraw(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    amount: i64,
) -> Result<bool> {
    let wait = Duration::from_secs(10);
    for attempt in 0..10 {
        let get = client
            .get(GetParts::IndexId(index, id))
            .request_timeout(wait);
        let read: Value = get.send().await?.error_for_status_code()?.json().await?;
        let (Some(seq_no), Some(term), Some(balance)) = (
            read["_seq_no"].as_i64(),
            read["_primary_term"].as_i64(),
            read["_source"]["balance"].as_i64(),
        ) else {
            bail!("{index}/{id} is not an account: {read}");
        };
        if balance < amount {
            return Ok(false);
        }
        let sent = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seq_no)
            .if_primary_term(term)
            .body(json!({ "balance": balance - amount }))
            .request_timeout(wait)
            .send()
            .await;
        // No answer: the write may or may not have been applied.
        let response = sent.context("withdrawal outcome unknown")?;
        let status = response.status_code().as_u16();
        if (200..300).contains(&status) {
            return Ok(true);
        }
        let answer: Value = response.json().await?;
        if status != 409
            || answer["error"]["type"] != "version_conflict_engine_exception"
        {
            bail!("withdrawal refused with HTTP {status}: {answer}");
        }
        let most = 10u64 << attempt;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=most))).await;
    }
    bail!("{index}/{id}: gave up after 10 conflicts; nothing withdrawn")
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::doc;
    use esbook::{Cluster, Needs};

    /// Eight clients withdraw 20 at once from a balance of 100: exactly five are paid, three
    /// refused, and the balance ends at 0, never below.
    #[tokio::test]
    async fn five_of_eight_withdrawals_are_paid_and_none_overdraws() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch04-withdraw");
        doc::fresh_index(client, index).await?;
        doc::put(client, index, "acct", json!({ "balance": 100 })).await?;

        let clients: Vec<_> = (0..8)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(
                    async move { withdraw(&client, index, "acct", 20).await },
                )
            })
            .collect();
        let mut paid = 0;
        for each in clients {
            paid += usize::from(each.await??);
        }
        assert_eq!(paid, 5);
        assert_eq!(
            doc::read(client, index, "acct").await?.number("balance")?,
            0
        );
        assert!(!withdraw(client, index, "acct", 20).await?);
        // Anything but a conflict is an error at once: a GET's 404 here.
        assert!(withdraw(client, index, "nobody", 20).await.is_err());
        Ok(())
    }
}
