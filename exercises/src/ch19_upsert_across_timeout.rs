//! Chapter 19: the upsert counter of chapter 10, exact across a timeout.

use std::time::Duration;

use anyhow::{Result, bail};
use elasticsearch::params::Refresh;
use elasticsearch::{Elasticsearch, UpdateParts};
use esbook::doc::{self, Outcome};
use serde_json::{Value, json};

// ANCHOR: solution
/// An upsert increment that carries its operation id: the script creates the counter
/// if needed, and applies an operation only if the counter does not list it yet.
const INCREMENT_ONCE: &str = "
    if (ctx.op == 'create') {
        ctx._source.counter = 0;
        ctx._source.ops = [];
    }
    if (ctx._source.ops.contains(params.op)) {
        ctx.op = 'none';
    } else {
        ctx._source.counter += params.by;
        ctx._source.ops.add(params.op);
    }";

/// Sends increment `op` of counter `id` until it is acknowledged, `attempts` times at
/// most, each attempt with the client's `deadline`. A timeout may have been applied,
/// so it is sent again, which the id makes safe. The acknowledged answer: `result` is
/// `noop` when an earlier attempt had landed.
pub async fn increment_until_acknowledged(
    client: &Elasticsearch,
    (index, id): (&str, &str),
    op: &str,
    attempts: u32,
    deadline: Duration,
) -> Result<Value> {
    for _ in 0..attempts {
        let sent = client
            .update(UpdateParts::IndexId(index, id))
            .retry_on_conflict(10)
            .refresh(Refresh::WaitFor) // the fault the test turns on (chapter 19)
            .request_timeout(deadline)
            .body(json!({
                "scripted_upsert": true,
                "script": {
                    "source": INCREMENT_ONCE,
                    "params": { "op": op, "by": 1 }
                },
                "upsert": {}
            }))
            .send()
            .await;
        match sent {
            Err(error) if error.is_timeout() => continue, // may have landed
            Err(error) => return Err(error.into()),
            Ok(response) => match doc::outcome(response).await? {
                Outcome::Written(answer) => return Ok(answer),
                Outcome::Conflict(_) => continue,
            },
        }
    }
    bail!("{op}: not acknowledged after {attempts} attempts")
}
// ANCHOR_END: solution

#[cfg(test)]
mod tests {
    use super::*;
    use esbook::{Cluster, Needs, indices};

    /// With refreshes off, `refresh=wait_for` holds every answer that wrote something:
    /// each increment's first attempt times out after being applied, its second is a
    /// noop that answers at once, and three increments count exactly three.
    #[tokio::test]
    async fn timeouts_retried_count_once() -> Result<()> {
        let cluster = Cluster::connect(Needs::Scripting).await?;
        let (client, index) = (&cluster.client, "ex-ch19-timeout");
        doc::fresh_index(client, index).await?;
        indices::put_settings(client, index, json!({ "refresh_interval": "-1" }))
            .await?;

        let deadline = Duration::from_secs(2);
        for op in ["op-1", "op-2", "op-3"] {
            let answer = increment_until_acknowledged(
                client,
                (index, "views"),
                op,
                3,
                deadline,
            )
            .await?;
            assert_eq!(answer["result"], "noop", "{op}: {answer}");
        }
        let counter = doc::read(client, index, "views").await?;
        assert_eq!(counter.number("counter")?, 3);
        indices::refresh(client, index).await?; // answers the requests still waiting
        Ok(())
    }
}
