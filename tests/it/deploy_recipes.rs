//! The deploy recipes in deploy/ cannot run here (no Docker daemon,
//! systemd or Kubernetes), so this keeps them consistent with the code:
//! the example config validates, every recipe runs `run --config` on the
//! path the others mount, the metrics port is the same everywhere, the
//! probes and the ServiceMonitor use the endpoint's real paths, and every
//! metric the Grafana dashboard queries is one the engine exports.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn deploy(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const CONFIG_PATH: &str = "/etc/dynamo-cdc/pipeline.toml";
const PORT: &str = "9464";

#[test]
fn the_example_config_validates_and_listens_on_the_recipes_port() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/pipeline.toml");
    let output = common::engine::command(&["validate", "--config", &path.display().to_string()])
        .env("POSTGRES_URL", "host=db user=cdc")
        .output()
        .expect("validate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(deploy("pipeline.toml").contains(&format!("listen = \"0.0.0.0:{PORT}\"")));
}

#[test]
fn every_recipe_runs_the_same_command_on_the_mounted_config() {
    let help = common::engine::command(&["run", "--help"])
        .output()
        .expect("run --help");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--config"));
    let docker = deploy("Dockerfile");
    assert!(docker.contains(&format!("CMD [\"run\", \"--config\", \"{CONFIG_PATH}\"]")));
    assert!(docker.contains(&format!("EXPOSE {PORT}")));
    assert!(
        docker.matches("\nFROM ").count() + usize::from(docker.starts_with("FROM ")) >= 2,
        "multi-stage"
    );
    assert!(docker.contains("USER 10001"), "non-root");
    let unit = deploy("dynamo-cdc.service");
    assert!(unit.contains(&format!(
        "ExecStart=/usr/local/bin/dynamo-cdc run --config {CONFIG_PATH}"
    )));
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(hardening), "the unit lacks {hardening}");
    }
    let kubernetes = deploy("kubernetes.yaml");
    assert!(kubernetes.contains(&format!("args: [\"run\", \"--config\", \"{CONFIG_PATH}\"]")));
    assert!(kubernetes.contains("mountPath: /etc/dynamo-cdc\n"));
    assert!(kubernetes.contains(&format!("containerPort: {PORT}")));
    assert!(kubernetes.contains(&format!("port: {PORT}")));
    assert!(kubernetes.contains("runAsUser: 10001"));
}

#[test]
fn probes_and_scrapes_use_the_endpoints_paths() {
    // The paths the endpoint answers (tests/metrics.rs calls each of them).
    let server = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/app/metrics_server.rs"),
    )
    .expect("server.rs");
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert!(
            server.contains(&format!("\"{path}\" =>")),
            "the endpoint has no {path}"
        );
    }
    let kubernetes = deploy("kubernetes.yaml");
    assert!(
        kubernetes.contains("livenessProbe:\n            httpGet:\n              path: /healthz")
    );
    assert!(
        kubernetes.contains("startupProbe:\n            httpGet:\n              path: /healthz")
    );
    assert!(
        kubernetes.contains("readinessProbe:\n            httpGet:\n              path: /readyz")
    );
    assert!(kubernetes.contains("kind: ServiceMonitor"));
    assert!(kubernetes.contains("path: /metrics"));
}

/// The metric names the engine exports (the string constants of names.rs).
fn exported_metrics() -> BTreeSet<String> {
    let names =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metric_names.rs"))
            .expect("names.rs");
    names
        .lines()
        .filter(|l| l.starts_with("pub const "))
        .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
        .collect()
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let exported = exported_metrics();
    assert!(
        exported.contains("dynamo_cdc_sink_lag_seconds"),
        "{exported:?}"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&deploy("grafana-dashboard.json")).expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queried = BTreeSet::new();
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("dynamo_cdc_") || word.starts_with("process_") {
                    let base = ["_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|suffix| word.strip_suffix(suffix))
                        .filter(|base| exported.contains(*base))
                        .unwrap_or(word);
                    assert!(
                        exported.contains(base),
                        "the dashboard queries {word}, which is not exported"
                    );
                    queried.insert(base.to_owned());
                }
            }
        }
    }
    let missing: Vec<&String> = exported.difference(&queried).collect();
    assert!(missing.is_empty(), "metrics without a panel: {missing:?}");
}
