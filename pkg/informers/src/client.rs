//! Building a `kube::Client`: from a kubeconfig, in-cluster, or for the built-in emulator.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::{Error, Result};

/// A client for a real cluster. With `kubeconfig` given, that file (and `context`, or its
/// current context). Without it: the in-cluster configuration when running in a pod (and no
/// context was asked for), else `KUBECONFIG` or `~/.kube/config`. Call within a Tokio runtime.
///
/// # Errors
/// [`Error::Kubeconfig`], [`Error::InCluster`] or [`Error::ClientBuild`].
pub async fn client(kubeconfig: Option<PathBuf>, context: Option<String>) -> Result<kube::Client> {
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(&path).map_err(Error::Kubeconfig)?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(Error::Kubeconfig)?
        }
        None if options.context.is_none()
            && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() =>
        {
            kube::Config::incluster().map_err(Error::InCluster)?
        }
        None => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(Error::Kubeconfig)?,
    };
    kube::Client::try_from(config).map_err(Error::ClientBuild)
}

/// A client for a server at `url` with no authentication: the built-in emulator (plain HTTP).
/// Call within a Tokio runtime.
///
/// # Errors
/// [`Error::Url`] when `url` does not parse, [`Error::ClientBuild`] when the client cannot be
/// built.
pub fn client_for_url(url: &str) -> Result<kube::Client> {
    let uri: http::Uri = url.parse().map_err(|source| Error::Url {
        url: url.to_owned(),
        source,
    })?;
    kube::Client::try_from(kube::Config::new(uri)).map_err(Error::ClientBuild)
}

/// `client`, with `answered` told each time the API server answers one of its requests with a
/// 2xx status. A watch that starts again after errors emits no event until an object changes,
/// so this is how a watcher learns that the API server is back (see [`crate::watch`]).
pub(crate) fn telling_answers(
    client: kube::Client,
    answered: tokio::sync::watch::Sender<()>,
) -> kube::Client {
    let namespace = client.default_namespace().to_owned();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let client = client.clone();
        let answered = answered.clone();
        async move {
            let response = client.send(request).await?;
            if response.status().is_success() {
                answered.send_replace(());
            }
            Ok::<_, kube::Error>(response)
        }
    });
    kube::Client::new(service, namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn url_client() {
        assert!(client_for_url("http://127.0.0.1:8080").is_ok());
        assert!(matches!(
            client_for_url("not a url"),
            Err(Error::Url { .. })
        ));
    }

    #[tokio::test]
    async fn missing_kubeconfig_file() {
        let missing = PathBuf::from("/nonexistent/astrolabe/kubeconfig");
        assert!(matches!(
            client(Some(missing), None).await,
            Err(Error::Kubeconfig(_))
        ));
    }
}
