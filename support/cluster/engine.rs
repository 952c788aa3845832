//! Which Elasticsearch the examples run on, in one place.
//!
//! On Maven Central (the one place this project's machines can download Elasticsearch from
//! without a container registry) there are two kinds of build:
//!
//! - Elastic's own `integ-test-zip`, published for every current release. It is a real
//!   Elasticsearch but carries only the core modules: no Painless, so no scripted updates.
//! - Elasticsearch's module jars republished by codelibs for embedding, with a runner that starts
//!   nodes inside one JVM. These include Painless, but stop at 7.10.2.
//!
//! So the official release serves everything it can, and the 7.10.2 engine serves only what needs
//! a script. Readers with Docker get the official image, which has every module, for both.

use std::ops::RangeInclusive;

use super::Needs;

/// One Elasticsearch build the local path can download and start.
#[derive(Debug)]
pub struct Engine {
    /// Short name used for its directory and in messages.
    pub slug: &'static str,
    /// The version the server reports.
    pub version: &'static str,
    /// Java majors that run it.
    pub java: RangeInclusive<u32>,
    pub kind: Kind,
    pub security: Security,
}

/// Whether the node asks for credentials.
#[derive(Debug)]
pub enum Security {
    /// No security: a loopback-only demo node (see the book's appendix on why).
    Off,
    /// Security on, with one superuser in the file realm.
    Basic {
        user: &'static str,
        password: &'static str,
    },
}

#[derive(Debug)]
pub enum Kind {
    /// An Elasticsearch distribution zip (`bin/elasticsearch`), from these Maven coordinates.
    Distribution { artifact: &'static str },
    /// The codelibs cluster runner and its module jars, from these Maven coordinates.
    ClusterRunner { artifact: &'static str },
}

/// The newest official release on Maven Central (checked 2026-11-22).
pub const OFFICIAL: Engine = Engine {
    slug: "9.5.4",
    version: "9.5.4",
    java: 21..=25,
    kind: Kind::Distribution {
        artifact: "org.elasticsearch.distribution.integ-test-zip:elasticsearch:9.5.4:zip",
    },
    security: Security::Off,
};

/// The official release with security on, for the tests of wrong and right credentials.
/// The credentials are fixed and public: the node listens on 127.0.0.1 only and holds nothing.
pub const SECURED: Engine = Engine {
    slug: "9.5.4-secured",
    security: Security::Basic {
        user: "occ-book",
        password: "occ-book-secret",
    },
    ..OFFICIAL
};

/// The newest Elasticsearch with `lang-painless` on Maven Central.
pub const SCRIPTING: Engine = Engine {
    slug: "7.10.2-painless",
    version: "7.10.2",
    java: 11..=25,
    kind: Kind::ClusterRunner {
        artifact: "org.codelibs:elasticsearch-cluster-runner:7.10.2.0",
    },
    security: Security::Off,
};

/// The official image readers with Docker get, for everything (it has every module).
pub const OFFICIAL_IMAGE: &str =
    "docker.elastic.co/elasticsearch/elasticsearch:9.5.4";

/// The engine the local path starts for `needs`.
pub fn local_engine(needs: Needs) -> &'static Engine {
    match needs {
        Needs::Core => &OFFICIAL,
        Needs::Scripting => &SCRIPTING,
    }
}

/// Every engine the local path may have started (for `cargo run --bin cluster -- stop`).
pub const ALL: [&Engine; 3] = [&OFFICIAL, &SCRIPTING, &SECURED];

impl Engine {
    /// Where its files are unpacked, shared by the engines built from the same download.
    pub fn home_name(&self) -> String {
        match self.kind {
            Kind::Distribution { .. } => format!("elasticsearch-{}", self.version),
            Kind::ClusterRunner { .. } => {
                format!("cluster-runner-{}", self.version)
            }
        }
    }

    /// The URL of a node of this engine on `port`, with its credentials if it has any.
    pub fn url(&self, port: u16) -> String {
        match self.security {
            Security::Off => format!("http://127.0.0.1:{port}"),
            Security::Basic { user, password } => {
                format!("http://{user}:{password}@127.0.0.1:{port}")
            }
        }
    }
}
