//! The book's exercises: each exercise's solution, compiled and tested against a real
//! Elasticsearch.
//!
//! One file per exercise, named after its chapter (`chNN_what_it_builds.rs`). Each holds the
//! solution as a small function between `// ANCHOR: solution` and `// ANCHOR_END: solution`,
//! which the chapter's `src/exercises/chNN.md` shows folded, and a test that runs it against a
//! real Elasticsearch and checks what the exercise asks for: `cargo test -p exercises chNN`.
//! Like the examples, the tests find their Elasticsearch through `esbook::Cluster::connect`;
//! the ones that need Painless ask for `Needs::Scripting`.

pub mod ch04_withdraw_with_occ;
pub mod ch06_refuse_overdraft;
pub mod ch06_retry_only_the_write;
pub mod ch09_create_if_absent;
pub mod ch10_created_once;
pub mod ch11_partial_withdrawal;
pub mod ch12_bulk_once;
pub mod ch13_drop_stale_rows;
pub mod ch14_finish_the_job;
pub mod ch15_sharded_stock;
pub mod ch16_price_of_writers;
pub mod ch17_new_term;
pub mod ch18_idempotent_occ;
pub mod ch19_upsert_across_timeout;
pub mod ch20_refused_debit;
