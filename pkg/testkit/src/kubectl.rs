//! The real kubectl against a served emulator, with its own cache and home directory.

use std::process::Command;
use std::time::Duration;

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
    /// kubectl for the API server at `server` (e.g. [`crate::Emulator::url`]).
    ///
    /// # Panics
    /// When kubectl is not installed or no temporary directory can be made.
    #[must_use]
    pub fn new(server: &str) -> Self {
        Self {
            bin: kubectl_path(),
            server: server.to_owned(),
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}")),
        }
    }

    /// Runs kubectl (for at most a minute); returns whether it succeeded and its stdout and
    /// stderr.
    ///
    /// # Panics
    /// When kubectl cannot be started or does not finish within a minute.
    pub async fn run(&self, args: &[&str]) -> (bool, String) {
        self.run_with(args, &[]).await
    }

    /// [`Kubectl::run`] with extra environment variables (`EDITOR` for `kubectl edit`).
    ///
    /// # Panics
    /// When kubectl cannot be started or does not finish within a minute.
    pub async fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.envs(env.iter().copied());
        cmd.arg("--server").arg(&self.server);
        cmd.arg("--cache-dir").arg(self.dir.path().join("cache"));
        cmd.env("KUBECONFIG", self.dir.path().join("no-kubeconfig"));
        cmd.env("HOME", self.dir.path());
        cmd.args(args);
        let out = crate::within(Duration::from_secs(60), "kubectl", cmd.output())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("kubectl {args:?} did not start: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Runs kubectl and asserts that it succeeded; returns its output.
    ///
    /// # Panics
    /// When kubectl fails (the panic carries its output).
    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed: {text}");
        text
    }

    /// Writes `text` to `name` in the scratch directory; returns the path.
    ///
    /// # Panics
    /// When the file cannot be written.
    #[must_use]
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path.to_string_lossy().into_owned()
    }
}
