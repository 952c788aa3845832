//! Support code for *Optimistic Concurrency Control in Elasticsearch, in Rust*.
//!
//! Every example in `examples/` is one chapter's experiment. This crate holds only what the
//! examples share, so each example reads like its chapter and nothing else.
//!
//! # Layout
//!
//! - [`cluster`]: where the Elasticsearch comes from. `ELASTICSEARCH_URL` if set, else a
//!   container started by testcontainers (Docker, or Podman through `DOCKER_HOST`), else a real
//!   Elasticsearch downloaded from Maven Central and started on 127.0.0.1, reused across runs.
//! - [`doc`]: the few document operations every chapter performs (fresh index, read with
//!   `_seq_no`/`_primary_term`, classify a write's answer as success or version conflict).
//! - [`retry`]: a bounded retry policy with exponential backoff and full jitter.
//! - [`cli`]: the examples' command-line flags, with one-line errors.
//! - [`report`]: the `RESULT {json}` lines and the claims each example checks before it exits.
//!
//! A real system would make different trade-offs in places (connection pools, TLS set-up,
//! retries tuned to its own latency); each module says where.

pub mod cli;
pub mod cluster;
pub mod doc;
pub mod report;
pub mod retry;

pub use cluster::{Cluster, Needs, Source};
pub use report::{Claims, run_example, run_main};
