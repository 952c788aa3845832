//! The settings of every node the book starts, in one place: a local node gets them in its
//! `elasticsearch.yml` (or, for the scripting build, in its environment), a container in its
//! environment, as the official image expects.

use crate::facts::{HEAP, NODE_SETTINGS};

/// The origins a browser page may send requests from (Elasticsearch's `http.cors.*`): the
/// book served by `mdbook serve` (port 3000) and by the browser check
/// (`tests/browser/run.mjs`, port 3939), on loopback only, so that a console block's Run
/// button reaches the node. A pattern between slashes is a regular expression that the whole
/// origin must match.
pub const BOOK_ORIGINS: &str = r"/http:\/\/(localhost|127\.0\.0\.1):(3000|3939)/";

/// The CORS settings of every node the book starts: browsers may call it from [`BOOK_ORIGINS`]
/// only, with a JSON or NDJSON body and, on a secured node, credentials.
pub const CORS_SETTINGS: &[(&str, &str)] = &[
    ("http.cors.enabled", "true"),
    ("http.cors.allow-origin", BOOK_ORIGINS),
    (
        "http.cors.allow-headers",
        "X-Requested-With,Content-Type,Content-Length,Authorization",
    ),
];

/// Whether a node asks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No security: a loopback-only demo node (the book's appendix says why).
    Off,
    /// Security on, over plain HTTP, with one superuser in the file realm.
    Basic {
        user: &'static str,
        password: &'static str,
    },
    /// Security on, HTTP over TLS with a certificate our own CA signed (in the node's
    /// `config/certs/`), and one superuser in the file realm.
    Tls {
        user: &'static str,
        password: &'static str,
    },
}

impl Security {
    /// The user and password, if the node asks for them.
    pub fn credentials(&self) -> Option<(&'static str, &'static str)> {
        match *self {
            Security::Off => None,
            Security::Basic { user, password }
            | Security::Tls { user, password } => Some((user, password)),
        }
    }
}

/// Where a TLS node finds its key, its certificate and the CA that signed it, relative to its
/// config directory.
pub const TLS_KEY: &str = "certs/node.key";
pub const TLS_CERT: &str = "certs/node.crt";
pub const TLS_CA: &str = "certs/ca.crt";

/// One node, as its settings need to describe it.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub cluster: String,
    pub name: String,
    /// `Some((http, transport))`: listen on 127.0.0.1 on these ports. `None`: keep the image's
    /// own (a container on a bridge network, reached through mapped ports).
    pub loopback_ports: Option<(u16, u16)>,
    /// Transport addresses of the other nodes of its cluster; none for a single node.
    pub seed_hosts: Vec<String>,
    /// Names of the nodes that elect the first master, on a new cluster's first start only
    /// (Elasticsearch warns when a node that already joined a cluster is given them).
    pub initial_masters: Vec<String>,
    pub security: Security,
}

impl NodeSpec {
    /// The node's settings, name and value.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut settings: Vec<(String, String)> = vec![
            ("cluster.name".into(), self.cluster.clone()),
            ("node.name".into(), self.name.clone()),
        ];
        if let Some((http, transport)) = self.loopback_ports {
            settings.extend(
                NODE_SETTINGS
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string())),
            );
            settings.push(("http.port".into(), http.to_string()));
            settings.push(("transport.port".into(), transport.to_string()));
        } else {
            settings.extend(
                NODE_SETTINGS
                    .iter()
                    .filter(|(name, _)| *name != "network.host")
                    .map(|(name, value)| (name.to_string(), value.to_string())),
            );
        }
        settings.extend(
            CORS_SETTINGS
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        if self.seed_hosts.is_empty() {
            settings.push(("discovery.type".into(), "single-node".into()));
        } else {
            settings
                .push(("discovery.seed_hosts".into(), self.seed_hosts.join(",")));
        }
        if !self.initial_masters.is_empty() {
            settings.push((
                "cluster.initial_master_nodes".into(),
                self.initial_masters.join(","),
            ));
        }
        match self.security {
            Security::Off => {
                settings.push(("xpack.security.enabled".into(), "false".into()))
            }
            Security::Basic { .. } => {
                for (name, value) in [
                    ("xpack.security.enabled", "true"),
                    ("xpack.security.http.ssl.enabled", "false"),
                    ("xpack.security.transport.ssl.enabled", "false"),
                ] {
                    settings.push((name.into(), value.into()));
                }
            }
            Security::Tls { .. } => {
                // Paths are relative to the node's config directory.
                for (name, value) in [
                    ("xpack.security.enabled", "true"),
                    ("xpack.security.http.ssl.enabled", "true"),
                    ("xpack.security.http.ssl.key", TLS_KEY),
                    ("xpack.security.http.ssl.certificate", TLS_CERT),
                    ("xpack.security.http.ssl.certificate_authorities", TLS_CA),
                    ("xpack.security.transport.ssl.enabled", "false"),
                ] {
                    settings.push((name.into(), value.into()));
                }
            }
        }
        settings
    }

    /// The settings as `elasticsearch.yml` lines.
    pub fn yml(&self) -> String {
        let mut yml =
            String::from("# Written by the book's provisioning at every start.\n");
        for (name, value) in self.settings() {
            yml.push_str(&format!("{name}: {value}\n"));
        }
        yml
    }
}

/// The JVM heap options, as `ES_JAVA_OPTS` takes them.
pub fn heap_options() -> String {
    format!("-Xms{HEAP} -Xmx{HEAP}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NodeSpec {
        NodeSpec {
            cluster: "c".into(),
            name: "n".into(),
            loopback_ports: Some((9201, 9301)),
            seed_hosts: vec![],
            initial_masters: vec![],
            security: Security::Off,
        }
    }

    fn get(spec: &NodeSpec, name: &str) -> Option<String> {
        spec.settings()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// A node alone is a single-node cluster on loopback with security off.
    #[test]
    fn a_single_node_binds_loopback_and_discovers_nobody() {
        let spec = spec();
        assert_eq!(get(&spec, "network.host").as_deref(), Some("127.0.0.1"));
        assert_eq!(get(&spec, "http.port").as_deref(), Some("9201"));
        assert_eq!(get(&spec, "discovery.type").as_deref(), Some("single-node"));
        assert_eq!(get(&spec, "discovery.seed_hosts"), None);
        assert_eq!(
            get(&spec, "xpack.security.enabled").as_deref(),
            Some("false")
        );
    }

    /// A node of three knows the others and, on its first start only, who may be master.
    #[test]
    fn a_node_of_a_cluster_seeds_its_peers() {
        let mut spec = spec();
        spec.seed_hosts = vec!["127.0.0.1:9302".into(), "127.0.0.1:9303".into()];
        spec.initial_masters = vec!["a".into(), "b".into(), "c".into()];
        assert_eq!(get(&spec, "discovery.type"), None);
        assert_eq!(
            get(&spec, "discovery.seed_hosts").as_deref(),
            Some("127.0.0.1:9302,127.0.0.1:9303")
        );
        assert_eq!(
            get(&spec, "cluster.initial_master_nodes").as_deref(),
            Some("a,b,c")
        );
        assert!(spec.yml().contains("cluster.initial_master_nodes: a,b,c\n"));
    }

    /// A TLS node serves HTTPS with the certificate in its config directory.
    #[test]
    fn a_tls_node_serves_https_with_its_certificate() {
        let mut spec = spec();
        spec.security = Security::Tls {
            user: "u",
            password: "p",
        };
        assert_eq!(
            get(&spec, "xpack.security.http.ssl.enabled").as_deref(),
            Some("true")
        );
        assert_eq!(
            get(&spec, "xpack.security.http.ssl.certificate").as_deref(),
            Some(TLS_CERT)
        );
        assert_eq!(spec.security.credentials(), Some(("u", "p")));
    }

    /// Every node answers browser pages from the book's local origins, and only from them.
    #[test]
    fn a_node_allows_the_books_local_origins_only() {
        for spec in [
            spec(),
            NodeSpec {
                loopback_ports: None,
                ..spec()
            },
        ] {
            assert_eq!(get(&spec, "http.cors.enabled").as_deref(), Some("true"));
            let origins = get(&spec, "http.cors.allow-origin").unwrap();
            assert_eq!(origins, BOOK_ORIGINS);
            assert!(
                spec.yml()
                    .contains(&format!("http.cors.allow-origin: {origins}\n"))
            );
            assert!(
                get(&spec, "http.cors.allow-headers")
                    .unwrap()
                    .contains("Authorization")
            );
        }
        // What a running node makes of it (allowed and refused origins) the browser check
        // tries: tests/browser/run.mjs.
    }

    /// On a bridge network the image keeps its own address and ports.
    #[test]
    fn a_bridged_container_keeps_the_images_address() {
        let mut spec = spec();
        spec.loopback_ports = None;
        assert_eq!(get(&spec, "network.host"), None);
        assert_eq!(get(&spec, "http.port"), None);
    }
}
