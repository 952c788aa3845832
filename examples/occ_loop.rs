//! Chapter 4: the OCC loop in plain crate calls, and clients racing through it.
//!
//! The listing at the top uses the `elasticsearch` crate, `serde_json`, `tokio` and `fastrand`
//! alone: the read, the two numbers out of its answer, the conditional write, the 409, and a
//! bounded retry with backoff. Below it, `main` races four clients through it, five
//! withdrawals of 10 each from a balance of 1000.
//!
//! Run it: `cargo run --example occ_loop`. You should see all 20 withdrawals made, some
//! version conflicts met on the way (how many changes from run to run), and a final balance
//! of 800. It exits non-zero if a withdrawal failed or the balance is not 800.

// ANCHOR: loop
use std::time::Duration;

use elasticsearch::{Elasticsearch, GetParts, IndexParts};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Withdraws `amount` from account `id` with OCC, and returns how many version
/// conflicts it met on the way. Gives up, with an error, after 10 attempts.
pub async fn withdraw(
    client: &Elasticsearch,
    index: &str,
    id: &str,
    amount: i64,
) -> Result<u32, Error> {
    let wait = Duration::from_secs(10);
    for attempt in 0..10 {
        if attempt > 0 {
            // The last try met a conflict: wait at random, up to 10 ms, 20, 40, ...
            let most = 10u64 << (attempt - 1);
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=most)))
                .await;
        }
        // Read the balance, and the two numbers that name this state of the account.
        let get = client
            .get(GetParts::IndexId(index, id))
            .request_timeout(wait);
        let read: Value = get.send().await?.error_for_status_code()?.json().await?;
        let seq_no = read["_seq_no"].as_i64().ok_or("no _seq_no")?;
        let term = read["_primary_term"].as_i64().ok_or("no _primary_term")?;
        let balance = read["_source"]["balance"].as_i64().ok_or("no balance")?;
        // Write, on the condition that the account is still in that state.
        let sent = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seq_no)
            .if_primary_term(term)
            .body(json!({ "balance": balance - amount }))
            .request_timeout(wait)
            .send()
            .await;
        let response = sent.map_err(|e| {
            format!("outcome unknown, the write may be applied: {e}")
        })?;
        let status = response.status_code().as_u16();
        if (200..300).contains(&status) {
            return Ok(attempt);
        }
        let answer: Value = response.json().await?;
        let kind = &answer["error"]["type"];
        if status != 409 || kind != "version_conflict_engine_exception" {
            return Err(format!("HTTP {status}: {answer}").into());
        }
        // A conflict: someone wrote since our read. Read again and try again.
    }
    Err("gave up after 10 conflicts; nothing withdrawn".into())
}
// ANCHOR_END: loop

use std::process::ExitCode;
use std::time::Instant;

use esbook::doc;
use esbook::{Cluster, Needs};
use harness::report::{self, Claims};

const INDEX: &str = "occ-loop";
const ACCOUNT: &str = "12345";
const OPENING: i64 = 1000;
const CLIENTS: usize = 4;
const EACH: usize = 5;
const AMOUNT: i64 = 10;

/// What the race did: the withdrawals made, the conflicts they met, the ones that failed
/// (with why), and the balance left.
struct Race {
    made: usize,
    conflicts: u32,
    failed: Vec<String>,
    final_balance: i64,
}

/// Opens the account and races `CLIENTS` clients through [`withdraw`], `EACH` withdrawals
/// of `AMOUNT` each, all at once.
async fn race(cluster: &Cluster) -> anyhow::Result<Race> {
    doc::fresh_index(&cluster.client, INDEX).await?;
    doc::put(
        &cluster.client,
        INDEX,
        ACCOUNT,
        json!({ "balance": OPENING }),
    )
    .await?;
    println!("Account {ACCOUNT} opened with balance {OPENING}");
    println!(
        "{CLIENTS} clients withdraw {AMOUNT}, {EACH} times each, all at once, through withdraw()\n"
    );
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let client = cluster.client.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                for _ in 0..EACH {
                    let result = withdraw(&client, INDEX, ACCOUNT, AMOUNT).await;
                    results.push(result.map_err(|e| e.to_string()));
                }
                results
            })
        })
        .collect();
    let mut race = Race {
        made: 0,
        conflicts: 0,
        failed: Vec::new(),
        final_balance: 0,
    };
    for (n, task) in tasks.into_iter().enumerate() {
        let results = task.await?;
        let made = results.iter().filter(|r| r.is_ok()).count();
        let conflicts: u32 = results.iter().flatten().sum();
        println!(
            "Client {}: {made} withdrawals made, {conflicts} conflicts retried",
            n + 1
        );
        race.made += made;
        race.conflicts += conflicts;
        race.failed
            .extend(results.into_iter().filter_map(Result::err));
    }
    for error in &race.failed {
        println!("A withdrawal failed: {error}");
    }
    race.final_balance = doc::read(&cluster.client, INDEX, ACCOUNT)
        .await?
        .number("balance")?;
    println!(
        "\n{} withdrawals made, {} version conflicts met and retried on the way",
        race.made, race.conflicts
    );
    println!(
        "Final balance: {} ({OPENING} - {} x {AMOUNT})",
        race.final_balance, race.made
    );
    Ok(race)
}

const USAGE: &str = "usage: cargo run --example occ_loop (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let started = Instant::now();
        let run = race(&cluster).await?;
        Ok(check(&cluster, &run, started.elapsed()))
    })
    .await
}

/// The chapter's claims about the run, checked quietly, and its machine-readable result.
/// Whether conflicts happened at all depends on timing, so it is reported, not checked.
fn check(cluster: &Cluster, run: &Race, elapsed: Duration) -> Claims {
    let tried = CLIENTS * EACH;
    let expected = OPENING - tried as i64 * AMOUNT;
    report::result(
        cluster,
        elapsed,
        json!({
            "example": "occ_loop",
            "clients": CLIENTS,
            "withdrawals": tried,
            "amount": AMOUNT,
            "opening": OPENING,
            "made": run.made,
            "failed": run.failed.len(),
            "conflicts": run.conflicts,
            "expected": expected,
            "final": run.final_balance,
        }),
    );
    let mut claims = Claims::new();
    claims.check(
        run.made == tried && run.failed.is_empty(),
        format!(
            "all {tried} withdrawals were made ({} failed)",
            run.failed.len()
        ),
    );
    claims.check(
        run.final_balance == expected,
        format!(
            "no withdrawal was lost: the balance is {expected} (it is {})",
            run.final_balance
        ),
    );
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded::{self, quoted};

    /// The recorded run made all 20 withdrawals and left exactly 1000 - 20 x 10.
    #[test]
    fn the_recorded_run_lost_nothing() {
        let run = &recorded::results("occ_loop")[0];
        assert_eq!(
            (run["made"].as_i64(), run["failed"].as_i64()),
            (Some(20), Some(0))
        );
        assert_eq!(
            (run["expected"].as_i64(), run["final"].as_i64()),
            (Some(800), Some(800))
        );
        let output = recorded::output("occ_loop");
        assert_eq!(
            quoted(&output, r"(\d+) version conflicts met"),
            run["conflicts"].to_string()
        );
    }

    /// Chapter 4 quotes the recorded run's final balance.
    #[test]
    fn chapter_4_quotes_the_recorded_balance() {
        let chapter = recorded::chapter("ch04-00-conditional-writes.md");
        let output = recorded::output("occ_loop");
        assert_eq!(
            quoted(&chapter, r"twenty withdrawals of 10 end at \*\*(\d+)\*\*"),
            quoted(&output, r"Final balance: (\d+)")
        );
    }

    /// Anything but a conflict is an error at once: here the GET's 404 for an account that
    /// does not exist.
    #[tokio::test]
    async fn a_missing_account_is_an_error_at_once() -> anyhow::Result<()> {
        let cluster = Cluster::connect(Needs::Core).await?;
        let index = "occ-loop-missing";
        doc::fresh_index(&cluster.client, index).await?;
        let error = withdraw(&cluster.client, index, "nobody", 10)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("404"), "{error}");
        Ok(())
    }
}
