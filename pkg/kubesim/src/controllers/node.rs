//! The Nodes the emulator creates at start ([`crate::SimConfig::nodes`]): Ready, schedulable,
//! with the capacity and addresses `kubectl get nodes` and `describe` show.

use serde_json::{Value, json};

use super::fnv64;

/// A Ready Node named `name`, with an InternalIP in 172.18.0.0/16 hashed from its name.
#[must_use]
pub fn ready_node(name: &str) -> Value {
    let h = fnv64(name);
    let ip = format!("172.18.{}.{}", (h >> 8) % 250, h % 250 + 2);
    let now = crate::store::now_rfc3339();
    let capacity =
        json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "emulated",
        }},
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "nodeInfo": {
                "kubeletVersion": "v1.31.0", "containerRuntimeVersion": "emulated://1.0",
                "operatingSystem": "linux", "architecture": "amd64",
                "osImage": "Astrolabe emulator", "kernelVersion": "6.0.0",
            },
        },
    })
}
