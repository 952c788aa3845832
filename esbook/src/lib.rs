//! The readers' library of *Optimistic Concurrency Control in Elasticsearch, in Rust*.
//!
//! Every example in `examples/` is one chapter's experiment. This crate holds only what the
//! examples share, so that each example reads like its chapter and nothing else: connecting,
//! the few document operations every chapter performs, and a bounded retry. What the examples
//! use only to check and report on themselves, and Part III's fault injection, are the
//! `harness` crate's.
//!
//! Getting an Elasticsearch running (downloading it, finding Java, starting nodes and
//! containers) is the `provision` crate's job; [`Cluster::connect`] calls it when no cluster is
//! given.
//!
//! # Layout
//!
//! - [`cluster`]: [`Cluster::connect`], and where the Elasticsearch comes from:
//!   `ELASTICSEARCH_URL` if set, else a container (Docker, or Podman through `DOCKER_HOST`), else
//!   a real Elasticsearch from Maven Central started on 127.0.0.1 and reused across runs.
//! - [`client`]: a client for a URL (credentials, a CA), and the first request that proves a
//!   server answers.
//! - [`answer`]: an answer as the server gave it, status and body, for the chapters that show
//!   what the server refuses and in which words.
//! - [`doc`]: read with `_seq_no`/`_primary_term`, write, classify a write's answer as written
//!   or a version conflict, and a fresh index for each run.
//! - [`indices`]: requests about a whole index: its settings, a refresh, a count (which, like
//!   any search, sees only refreshed writes).
//! - [`bulk`]: many documents per request: `_mget`, and `_bulk` with its answer read item by
//!   item (an HTTP 200 can hold 409s).
//! - [`counter`]: a counter sharded over N documents, so that concurrent increments rarely
//!   collide.
//! - [`retry`]: a bounded retry policy with exponential backoff and full jitter, and
//!   `until_written`, chapter 6's bounded retry loop, which later chapters' clients reuse.
//!
//! A real service would make different trade-offs in places (connection pools, TLS set-up,
//! retries tuned to its own latency); each module says where.

pub mod answer;
pub mod bulk;
pub mod client;
pub mod cluster;
pub mod counter;
pub mod doc;
pub mod indices;
pub mod retry;

pub use cluster::{Cluster, Needs, Source};
