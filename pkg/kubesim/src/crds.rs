//! The CustomResourceDefinitions compiled into the emulator (cert-manager, Gateway API,
//! Prometheus Operator, Istio networking: upstream group, versions, kinds, names and scopes,
//! trimmed to the fields Astrolabe's rules read), which a generated cluster's custom resources
//! are served from.

use serde_json::Value;

use crate::error::{Result, SimError};
use crate::sim::Sim;

/// The manifests, by file name (`crds/<name>` in this crate), each holding one or more CRDs.
pub const MANIFESTS: [(&str, &str); 4] = [
    (
        "cert-manager.yaml",
        include_str!("../crds/cert-manager.yaml"),
    ),
    ("gateway-api.yaml", include_str!("../crds/gateway-api.yaml")),
    (
        "prometheus-operator.yaml",
        include_str!("../crds/prometheus-operator.yaml"),
    ),
    (
        "istio-networking.yaml",
        include_str!("../crds/istio-networking.yaml"),
    ),
];

/// Every CRD of [`MANIFESTS`], as JSON.
///
/// # Errors
/// [`SimError::Invalid`] when a manifest is not YAML (a build with a broken manifest; a unit
/// test parses them).
pub fn definitions() -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (file, text) in MANIFESTS {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| SimError::Invalid(format!("crds/{file}: {e}")))?;
        out.extend(docs);
    }
    Ok(out)
}

impl Sim {
    /// Creates (or replaces) every CRD of [`MANIFESTS`]; their kinds are served on return.
    /// Returns how many were stored.
    ///
    /// # Errors
    /// A manifest that does not parse or a CRD the store rejects.
    pub fn install_crds(&self) -> Result<usize> {
        let crds = definitions()?;
        let n = crds.len();
        for crd in crds {
            self.upsert("CustomResourceDefinition", crd)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_manifest_parses_and_is_served() {
        let crds = definitions().unwrap_or_else(|e| panic!("{e}"));
        assert!(crds.len() >= 8, "{}", crds.len());
        let sim = Sim::new(crate::SimConfig::default());
        assert!(sim.kind_info("Certificate.cert-manager.io").is_err());
        assert_eq!(sim.install_crds().ok(), Some(crds.len()));
        for kind in [
            "Certificate.cert-manager.io",
            "ClusterIssuer.cert-manager.io",
            "HTTPRoute.gateway.networking.k8s.io",
            "ServiceMonitor.monitoring.coreos.com",
            "Gateway.networking.istio.io",
        ] {
            assert!(sim.kind_info(kind).is_ok(), "{kind} not served");
        }
    }
}
