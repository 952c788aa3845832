//! Which Elasticsearch the book runs, and how its nodes are set up: every such fact, written
//! once. The local nodes, the containers, the Podman images and the book's appendix all read
//! them from here.
//!
//! On Maven Central (the one place this project's machines can download Elasticsearch from
//! without a container registry) there are two kinds of build:
//!
//! - Elastic's own `integ-test-zip`, published for every current release. It is a real
//!   Elasticsearch but carries only the core modules: no Painless, no reindex.
//! - Elasticsearch's module jars republished by codelibs for embedding, with a runner that starts
//!   nodes inside one JVM. These include Painless and reindex, but stop at 7.10.2.
//!
//! So the newest official release serves everything it can, and the 7.10.2 build serves only
//! what needs a script or update-by-query. Readers with Docker get the official image, which has
//! every module, for both.

use std::ops::RangeInclusive;

// ANCHOR: versions
/// The newest official release on Maven Central (checked 2026-11-22).
macro_rules! release {
    () => {
        "9.5.4"
    };
}
/// The newest Elasticsearch with `lang-painless` and `reindex` on Maven Central.
macro_rules! scripting {
    () => {
        "7.10.2"
    };
}

/// Everything the book runs on, unless told otherwise.
pub const RELEASE: Server = Server {
    version: release!(),
    build: Build::Distribution {
        artifact: concat!(
            "org.elasticsearch.distribution.integ-test-zip:elasticsearch:",
            release!(),
            ":zip"
        ),
    },
    java: 21..=25,
    modules: Modules::Core,
    local_image: concat!("localhost/occ-elasticsearch:", release!()),
};

/// The official image readers with Docker get, for everything: it has every module.
pub const OFFICIAL_IMAGE: &str =
    concat!("docker.elastic.co/elasticsearch/elasticsearch:", release!());

/// What needs a script or update-by-query, where the release at hand lacks the modules.
pub const SCRIPTING: Server = Server {
    version: scripting!(),
    build: Build::ClusterRunner {
        artifact: concat!(
            "org.codelibs:elasticsearch-cluster-runner:",
            scripting!(),
            ".0"
        ),
    },
    java: 11..=25,
    modules: Modules::All,
    local_image: concat!("localhost/occ-elasticsearch:", scripting!(), "-painless"),
};
// ANCHOR_END: versions

/// The official Python client the contention benchmark (chapter 16) runs the notebook's method
/// with, per server: the same major version as the server, as the client requires. The 7.x
/// client refuses, from 7.14 on, a server that does not say it is Elastic's own build
/// (`UnsupportedProductError`); the scripting build does not say so, and 7.13 still talks to
/// it (checked against both servers above).
pub const PYTHON_CLIENTS: [(&Server, &str); 2] = [
    (&RELEASE, "elasticsearch>=9,<10"),
    (&SCRIPTING, "elasticsearch>=7,<7.14"),
];

// ANCHOR: node
/// The heap of every node the book starts: enough for the book, small enough for a laptop
/// (three nodes of a cluster stay within 3 GiB of memory).
pub const HEAP: &str = "512m";

/// Settings every node gets, beyond its name, ports and peers.
pub const NODE_SETTINGS: &[(&str, &str)] = &[
    // Loopback only: nothing but this machine can reach the node.
    ("network.host", "127.0.0.1"),
    // Laptops with full disks would otherwise turn the indices read-only.
    ("cluster.routing.allocation.disk.threshold_enabled", "false"),
];

/// The one user of the secured node (security tests only). Fixed and public: the node listens
/// on 127.0.0.1 only and holds nothing.
pub const SECURED_USER: (&str, &str) = ("occ-book", "occ-book-secret");
// ANCHOR_END: node

/// The label on every container the book starts, so leftovers can be found and removed.
pub const CONTAINER_LABEL: &str = "occ-book";

/// The label holding the process id of the run that started a container. testcontainers
/// removes a container when its handle is dropped, which a killed run never does: containers
/// whose run is gone are orphans, and `cargo xtask podman up` removes them.
pub const OWNER_LABEL: &str = "occ-book.owner";

/// How long a node may take from launch to healthy, unless `OCC_START_TIMEOUT_SECS` says
/// otherwise: a cold JVM on two busy cores takes 10 to 40 seconds.
pub const START_TIMEOUT_SECS: u64 = 240;

/// One Elasticsearch the book can run.
#[derive(Debug, PartialEq, Eq)]
pub struct Server {
    /// The version the server reports.
    pub version: &'static str,
    /// What the local path downloads from Maven Central.
    pub build: Build,
    /// Java majors that run it.
    pub java: RangeInclusive<u32>,
    /// Which modules it has.
    pub modules: Modules,
    /// The image this project builds for Podman, where no registry can be reached.
    pub local_image: &'static str,
}

/// How a server is packaged on Maven Central.
#[derive(Debug, PartialEq, Eq)]
pub enum Build {
    /// An Elasticsearch distribution zip (`bin/elasticsearch`).
    Distribution { artifact: &'static str },
    /// The codelibs cluster runner and its module jars, all on one classpath.
    ClusterRunner { artifact: &'static str },
}

/// Which modules a build has.
#[derive(Debug, PartialEq, Eq)]
pub enum Modules {
    /// Documents, conditional writes, bulk: no Painless, no reindex.
    Core,
    /// Painless (scripted updates) and reindex (update- and delete-by-query) too.
    All,
}

impl Server {
    /// The Maven coordinates of what the local path downloads.
    pub fn artifact(&self) -> &'static str {
        match self.build {
            Build::Distribution { artifact }
            | Build::ClusterRunner { artifact } => artifact,
        }
    }
}

/// How long a node may take to become healthy: `OCC_START_TIMEOUT_SECS`, or
/// [`START_TIMEOUT_SECS`].
pub fn start_timeout() -> std::time::Duration {
    let secs = std::env::var("OCC_START_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(START_TIMEOUT_SECS);
    std::time::Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version is written once and every name derived from it carries it.
    #[test]
    fn derived_names_carry_the_version() {
        assert!(OFFICIAL_IMAGE.ends_with(RELEASE.version));
        for server in [&RELEASE, &SCRIPTING] {
            assert!(server.artifact().contains(server.version));
            assert!(server.local_image.contains(server.version));
        }
    }
}
