//! The container path: testcontainers starts Elasticsearch in Docker (or Podman through
//! `DOCKER_HOST`), and removes it when the example ends.
//!
//! Everything that differs between engines is configuration, read here and nowhere else:
//!
//! | variable | default | what it is for |
//! | --- | --- | --- |
//! | `OCC_ES_IMAGE` | the official image, [`engine::OFFICIAL_IMAGE`] | the image for every example |
//! | `OCC_ES_SCRIPTING_IMAGE` | `OCC_ES_IMAGE` | the image for scripted updates, if it must differ |
//! | `OCC_CONTAINER_NETWORK` | `bridge` | `host` on Podman 4.3, whose port reports testcontainers cannot read |
//!
//! The node is configured like the official image expects: settings as environment variables
//! (`discovery.type=single-node`, ...), a modest heap through `ES_JAVA_OPTS`. Security is off:
//! this is a throwaway node on your own machine, reached only from it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use testcontainers::core::client::docker_client_instance;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::engine;
use super::progress::{Ticker, say};
use super::{Cluster, Needs, Source, local, url};

/// Label on every container this project starts, so leftovers can be found and removed.
pub const LABEL: &str = "occ-book";
/// How long the engine may take to answer a ping before we call it unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// A running container; removed when the last [`Cluster`] holding it is dropped.
pub struct Running {
    _container: ContainerAsync<GenericImage>,
}

/// Whether the engine already has `image` (within the ping timeout).
async fn image_present(image: &str) -> bool {
    let check = async {
        let docker = docker_client_instance().await.ok()?;
        docker.inspect_image(image).await.ok()
    };
    matches!(tokio::time::timeout(PING_TIMEOUT, check).await, Ok(Some(_)))
}

/// `Ok` if a container engine answers (Docker's socket, or `DOCKER_HOST`); otherwise why not.
pub async fn engine_answers() -> Result<()> {
    let where_ = std::env::var("DOCKER_HOST")
        .unwrap_or_else(|_| "the default Docker socket".into());
    let ping = async {
        let docker = docker_client_instance().await?;
        docker.ping().await?;
        anyhow::Ok(())
    };
    match tokio::time::timeout(PING_TIMEOUT, ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => bail!(
            "no container engine answered at {where_} ({})",
            url::root_cause(e.as_ref())
        ),
        Err(_) => bail!(
            "no container engine answered at {where_} within {PING_TIMEOUT:?}"
        ),
    }
}

/// The image for `needs`, from the configuration above.
pub fn image_for(needs: Needs) -> String {
    let core = std::env::var("OCC_ES_IMAGE")
        .unwrap_or_else(|_| engine::OFFICIAL_IMAGE.into());
    match needs {
        Needs::Core => core,
        Needs::Scripting => std::env::var("OCC_ES_SCRIPTING_IMAGE").unwrap_or(core),
    }
}

/// Starts a single-node Elasticsearch container for `needs` and connects to it.
pub async fn connect(needs: Needs) -> Result<Cluster> {
    engine_answers().await?;
    let image = image_for(needs);
    let timeout = super::start_timeout();
    if !image_present(&image).await {
        // Docker pulls it on start; a local-only engine (Podman here) has to have it built.
        say(format!(
            "image {image} is not here yet; the engine will pull it (first run only)"
        ));
    }
    let (name, tag) = image
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .ok_or_else(|| anyhow!("container image {image:?} must be NAME:TAG"))?;
    let host_network =
        std::env::var("OCC_CONTAINER_NETWORK").as_deref() == Ok("host");
    // On the host network the node must pick a port nobody uses; on a bridge it keeps 9200.
    let http_port = if host_network {
        local::free_port()?
    } else {
        9200
    };
    let transport_port = if host_network {
        local::free_port()?
    } else {
        9300
    };

    // Readiness is checked below over 127.0.0.1 (the one address this project may contact),
    // not by testcontainers: inside some sandboxes it would use a bridge address instead.
    let mut base = GenericImage::new(name, tag).with_wait_for(WaitFor::Nothing);
    if !host_network {
        base = base.with_exposed_port(ContainerPort::Tcp(9200));
    }
    let mut request = base
        .with_label(LABEL, "true")
        .with_env_var("discovery.type", "single-node")
        .with_env_var("xpack.security.enabled", "false")
        .with_env_var("cluster.routing.allocation.disk.threshold_enabled", "false")
        .with_env_var("ES_JAVA_OPTS", local::HEAP)
        .with_startup_timeout(timeout);
    if host_network {
        request = request
            .with_env_var("network.host", "127.0.0.1")
            .with_env_var("http.port", http_port.to_string())
            .with_env_var("transport.port", transport_port.to_string())
            .with_host_config_modifier(|config| {
                config.network_mode = Some("host".into());
                config.publish_all_ports = Some(false);
                config.port_bindings = None;
            });
    }
    say(format!("starting container {image}"));
    let started = Instant::now();
    let container = {
        let _ticker = Ticker::start(format!("starting container {image}"));
        request
            .start()
            .await
            .map_err(|e| anyhow!("cannot start container {image}: {e}"))?
    };
    let port = if host_network {
        http_port
    } else {
        container
            .get_host_port_ipv4(ContainerPort::Tcp(9200))
            .await
            .context("finding the container's HTTP port")?
    };
    let address = format!("http://127.0.0.1:{port}");
    let (client, shown) = url::client_for(&address)?;
    {
        let _ticker =
            Ticker::start(format!("waiting for {image} to become healthy"));
        loop {
            if local::healthy(&client).await {
                break;
            }
            if !container.is_running().await.unwrap_or(false) {
                print_logs(&container).await;
                bail!(
                    "container {image} exited while starting; the end of its log is above"
                );
            }
            if started.elapsed() > timeout {
                print_logs(&container).await;
                bail!(
                    "container {image} did not become healthy within {}s; the end of its log is above",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let version = url::server_version(&client, &shown).await?;
    say(format!(
        "container {image} healthy after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(Cluster {
        client,
        url: shown,
        source: Source::Container,
        version,
        _container: Some(std::sync::Arc::new(Running {
            _container: container,
        })),
    })
}

async fn print_logs(container: &ContainerAsync<GenericImage>) {
    let mut text = container.stdout_to_vec().await.unwrap_or_default();
    text.extend(container.stderr_to_vec().await.unwrap_or_default());
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(20)..] {
        eprintln!("  container| {line}");
    }
}
