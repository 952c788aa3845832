//! Chapter 9: open an account under an id the client chose, once, whoever asks first.

use anyhow::Result;
use elasticsearch::{CreateParts, Elasticsearch};
use esbook::doc::{self, Outcome};
use serde_json::Value;

// ANCHOR: solution
/// What opening an account came to.
#[derive(Debug)]
pub enum Opened {
    /// This request created it (HTTP 201).
    Created,
    /// It existed already (HTTP 409 "document already exists"): the account as it is.
    Exists(Value),
}

/// Creates `id` with `account` if no document has that id; otherwise reads the one
/// that does. No GET first: the create's 409 is the answer to "does it exist?".
pub async fn open_account(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    account: Value,
) -> Result<Opened> {
    let response = client
        .create(CreateParts::IndexId(index, id))
        .body(account)
        .send()
        .await?;
    match doc::outcome(response).await? {
        Outcome::Written(_) => Ok(Opened::Created),
        Outcome::Conflict(_) => {
            let existing = doc::read(client, index, id).await?;
            Ok(Opened::Exists(existing.source))
        }
    }
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs};
    use serde_json::json;

    /// Five clients open account 12345 at once: exactly one creates it, the four others
    /// are shown the creator's account, and the account holds the creator's data.
    #[tokio::test]
    async fn exactly_one_creator_and_everyone_sees_it() -> Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let (client, index) = (&cluster.client, "ex-ch09-create");
        doc::fresh_index(client, index).await?;

        let clients: Vec<_> = ["A", "B", "C", "D", "E"]
            .into_iter()
            .map(|owner| {
                let client = client.clone();
                tokio::spawn(async move {
                    let account = json!({ "owner": owner, "balance": 0 });
                    (owner, open_account(&client, index, "12345", account).await)
                })
            })
            .collect();
        let mut creators = Vec::new();
        let mut shown = Vec::new();
        for each in clients {
            match each.await? {
                (owner, Ok(Opened::Created)) => creators.push(owner),
                (_, Ok(Opened::Exists(account))) => {
                    shown.push(account["owner"].clone())
                }
                (_, Err(error)) => return Err(error),
            }
        }
        assert_eq!((creators.len(), shown.len()), (1, 4));
        assert!(shown.iter().all(|owner| *owner == creators[0]));
        let account = doc::read(client, index, "12345").await?;
        assert_eq!(account.source["owner"], creators[0]);
        assert_eq!(account.version, 1);
        Ok(())
    }
}
