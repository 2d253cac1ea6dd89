//! The real kubectl against a served emulator.

use std::process::Command;

/// Finds kubectl on the PATH or in the usual places; panics, naming the script that installs it,
/// when there is none.
fn kubectl_path() -> String {
    let found = |p: &str| {
        Command::new(p)
            .arg("version")
            .arg("--client")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    ["kubectl", "/usr/bin/kubectl", "/usr/local/bin/kubectl"]
        .into_iter()
        .find(|p| found(p))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            panic!(
                "kubectl not found (tried the PATH, /usr/bin and /usr/local/bin): \
                 scripts/test.sh installs it (Debian package kubernetes-client)"
            )
        })
}

/// kubectl pointed at one served emulator, with its own cache and home directory.
pub struct Kubectl {
    bin: String,
    server: String,
    /// The scratch directory (cache, home, manifests).
    pub dir: tempfile::TempDir,
}

impl Kubectl {
    /// kubectl for `served`.
    pub fn new(served: &super::Served) -> Self {
        Self {
            bin: kubectl_path(),
            server: served.url(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs kubectl; returns whether it succeeded and its stdout and stderr.
    pub async fn run(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("--server").arg(&self.server);
        cmd.arg("--cache-dir").arg(self.dir.path().join("cache"));
        cmd.env("KUBECONFIG", self.dir.path().join("no-kubeconfig"));
        cmd.env("HOME", self.dir.path());
        cmd.args(args);
        let out = super::within(60, "kubectl", cmd.output()).await.unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs kubectl and asserts that it succeeded; returns its output.
    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {text}");
        text
    }

    /// Writes `text` to `name` in the scratch directory; returns the path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }
}
