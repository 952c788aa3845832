//! A client for a cluster at a URL, and the first request that proves it answers.
//!
//! All three paths end here: a container or a local node is, in the end, a URL too.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::Url;
use elasticsearch::http::headers::{ACCEPT_ENCODING, HeaderValue};
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::nodes::NodesInfoParts;
use provision::progress::root_cause;

/// Every request's deadline. Generous for a laptop under load, short enough that a dead server
/// is reported rather than waited on forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds a client for `raw` and returns it with the URL as it is safe to print (no password).
///
/// User and password in the URL become HTTP Basic credentials. `ELASTICSEARCH_CA_CERT` may name
/// a PEM file to trust, for clusters with a self-signed certificate.
///
/// ```
/// let (_client, shown) =
///     esbook::client::client_for("http://elastic:secret@localhost:9200")?;
/// assert_eq!(shown, "http://localhost:9200");
///
/// let refused = esbook::client::client_for("localhost:9200").unwrap_err();
/// assert!(refused.to_string().contains("must look like http://host:9200"));
/// # anyhow::Ok(())
/// ```
pub fn client_for(raw: &str) -> Result<(Elasticsearch, String)> {
    let mut url = Url::parse(raw.trim())
        .map_err(|e| anyhow!("ELASTICSEARCH_URL {raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!(
            "ELASTICSEARCH_URL {raw:?} must look like http://host:9200 or https://user:password@host:9200"
        );
    }
    let credentials = match (url.username(), url.password()) {
        ("", None) => None,
        (user, password) => Some(Credentials::Basic(
            decode(user),
            decode(password.unwrap_or("")),
        )),
    };
    // Credentials travel in a header, never in the URL that is printed or logged.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let shown = url.as_str().trim_end_matches('/').to_string();

    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .timeout(REQUEST_TIMEOUT)
        // The crate asks for gzipped responses, so Elasticsearch compresses every answer and
        // the client inflates it. For this book's answers (a few hundred bytes, on one machine)
        // that saves nothing and was the largest single cost of the client's CPU in a debug
        // build (chapter 16). A service reading large search results over a slow link may
        // want compression back.
        .header(ACCEPT_ENCODING, HeaderValue::from_static("identity"))
        .disable_proxy();
    if let Some(credentials) = credentials {
        builder = builder.auth(credentials);
    }
    if let Some(path) = std::env::var_os("ELASTICSEARCH_CA_CERT") {
        let pem = std::fs::read(&path).with_context(|| {
            format!("reading ELASTICSEARCH_CA_CERT {}", path.to_string_lossy())
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            anyhow!("ELASTICSEARCH_CA_CERT is not a PEM certificate: {e}")
        })?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder
        .build()
        .map_err(|e| anyhow!("cannot build a client for {shown}: {e}"))?;
    Ok((Elasticsearch::new(transport), shown))
}

/// Asks the server for its version: the first request, so its failures are the ones a reader
/// meets (nothing listening, wrong credentials, not Elasticsearch) and each gets a clear line.
///
/// It asks the node itself (`GET /_nodes/_local`) rather than `GET /`: the official minimal
/// build on Maven Central leaves out the module that serves `/`.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// let version = esbook::client::server_version(&cluster.client, &cluster.url).await?;
/// assert_eq!(version, cluster.version);
///
/// let (nobody, url) = esbook::client::client_for("http://127.0.0.1:9")?;
/// let refused = esbook::client::server_version(&nobody, &url).await.unwrap_err();
/// assert!(refused.to_string().starts_with("cannot reach Elasticsearch at"));
/// # Ok(()) }
/// ```
pub async fn server_version(client: &Elasticsearch, url: &str) -> Result<String> {
    let response = client
        .nodes()
        .info(NodesInfoParts::NodeId(&["_local"]))
        .filter_path(&["nodes.*.version"])
        .send()
        .await
        .map_err(|e| unreachable(url, &root_cause(&e)))?;
    let status = response.status_code().as_u16();
    match status {
        200 => {}
        401 => bail!(
            "Elasticsearch at {url} rejected the credentials (HTTP 401); put the right user and \
             password in ELASTICSEARCH_URL (https://user:password@host:9200)"
        ),
        403 => {
            bail!("Elasticsearch at {url} refused access (HTTP 403) for this user")
        }
        _ => bail!(
            "{url} answered HTTP {status} to GET /_nodes/_local: is it Elasticsearch?"
        ),
    }
    let body: serde_json::Value = response.json().await.map_err(|e| {
        anyhow!("{url} did not answer GET /_nodes/_local with JSON: {e}")
    })?;
    body["nodes"]
        .as_object()
        .and_then(|nodes| nodes.values().next())
        .and_then(|node| node["version"].as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            anyhow!("{url} answered GET /_nodes/_local without a version: is it Elasticsearch?")
        })
}

/// The first request got no answer: one line saying why, with what to do where the cause is
/// a TLS mismatch (the usual trouble with a secured cluster).
fn unreachable(url: &str, cause: &str) -> anyhow::Error {
    let https = url.starts_with("https:");
    let hint = if cause.contains("UnknownIssuer") {
        match std::env::var_os("ELASTICSEARCH_CA_CERT") {
            Some(ca) => format!(
                "its certificate is not signed by the CA in ELASTICSEARCH_CA_CERT ({}); point \
                 it at the PEM certificate of the CA that signed the server's",
                ca.to_string_lossy()
            ),
            None => "its certificate is not signed by a CA this client trusts; set \
                     ELASTICSEARCH_CA_CERT to the PEM certificate of the CA that signed it"
                .to_string(),
        }
    } else if cause.contains("NotValidForName") {
        "its certificate is not valid for this host name; use the name (or address) the \
         certificate was made for"
            .to_string()
    } else if https && cause.contains("InvalidContentType") {
        "it does not speak TLS; try http:// instead of https://".to_string()
    } else if !https && cause.contains("connection closed before message completed")
    {
        "it closed the connection at once; if it expects TLS, use https://"
            .to_string()
    } else {
        return anyhow!("cannot reach Elasticsearch at {url}: {cause}");
    };
    anyhow!("cannot reach Elasticsearch at {url}: {hint} ({cause})")
}

fn decode(part: &str) -> String {
    // Userinfo in a URL is percent-encoded; the server wants the plain text.
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}
