//! Getting a real Elasticsearch running for the book: which one ([`facts`]), downloading it
//! ([`install`]), finding a Java for it ([`java`]), starting, reusing and stopping nodes and
//! clusters on 127.0.0.1 ([`local`]), starting containers ([`container`]) and building the
//! images the container path runs where no registry can be reached ([`podman`]).
//!
//! The readers' library (`esbook`) calls [`local::ensure`] and [`container::start`] when an
//! example needs a cluster and none is given; `cargo es` and `cargo xtask` call the rest. Nothing
//! here is about optimistic concurrency: it is the scaffolding that lets every example run on a
//! real server.
//!
//! # Layout
//!
//! - [`facts`]: versions, artifacts, images, heap and node settings, each written once.
//! - [`settings`]: a node's settings, as `elasticsearch.yml` or as container environment.
//! - [`install`]: the Maven Central download, unpacked once into the cache.
//! - [`local`]: nodes and N-node clusters as processes, recorded in the cache and reused.
//! - [`container`]: the typed testcontainers [`container::Elasticsearch`] image and its start.
//! - [`podman`]: Podman set up as the container engine, and the images it runs.
//! - [`tls`]: a certificate authority and a node certificate for the TLS node.
//! - [`health`], [`progress`], [`lock`], [`java`]: the waits, messages, locks and Java discovery
//!   the others share.

pub mod container;
pub mod facts;
pub mod health;
pub mod install;
pub mod java;
pub mod local;
pub mod lock;
pub mod podman;
pub mod progress;
pub mod settings;
pub mod tls;

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

/// A running Elasticsearch that this crate started (or found running from an earlier start).
pub struct Started {
    /// Its address, with credentials if it asks for them (`http://user:password@127.0.0.1:9201`).
    pub url: String,
    /// What keeps it alive: a container is removed when the last clone of this is dropped.
    /// Local nodes outlive the process, so they have nothing here.
    pub keep_alive: Option<Arc<dyn Any + Send + Sync>>,
}

/// Where downloads, unpacked servers, local nodes and image layers live: `OCC_CACHE_DIR`, else
/// `.elasticsearch/` in the repository, except for root.
///
/// Elasticsearch refuses to run as root, so for root the nodes run as `nobody`, who must be able
/// to enter every directory above the cache. A clone under `/root` is not reachable by anybody
/// else, so root's default is `/var/tmp/occ-book`, which everybody can enter.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OCC_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if is_root() {
        PathBuf::from("/var/tmp/occ-book")
    } else {
        // The repository's top: this crate sits one level below it.
        let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate_dir
            .parent()
            .unwrap_or(crate_dir)
            .join(".elasticsearch")
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `command` is on `PATH`.
pub fn on_path(command: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join(command).is_file())
    })
}
