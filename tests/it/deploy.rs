//! The deployment users run: Prometheus configuration and alert rules
//! (checked and unit-tested with promtool), the Grafana provisioning, the
//! container files (hadolint, and the compose file parsed and cross-checked
//! against the repository).

use std::process::Command;

use serde_json::Value;

use crate::harness::{repo, tool};

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn run(program: &std::path::Path, args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let output = Command::new(program).args(args).current_dir(dir).output().expect("tool runs");
    (
        output.status.success(),
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
    )
}

#[test]
fn prometheus_config_and_rules_pass_promtool_and_every_alert_is_unit_tested() {
    let Some(promtool) = tool("promtool") else { return };
    let dir = repo().join("prometheus");
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["check", "rules", "alerts.yml"],
        &["test", "rules", "alerts.test.yml"],
    ] {
        let (ok, output) = run(&promtool, args, &dir);
        assert!(ok, "promtool {args:?} failed:\n{output}");
    }
    // Every alert has a summary and a runbook into docs/operations.md, whose anchor exists.
    let operations = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap().to_lowercase();
    let tests = std::fs::read_to_string(dir.join("alerts.test.yml")).unwrap();
    let rules = yaml("prometheus/alerts.yml");
    for rule in rules["groups"][0]["rules"].as_array().unwrap() {
        let name = rule["alert"].as_str().unwrap();
        assert!(rule["annotations"]["summary"].is_string(), "{name}");
        let runbook = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = runbook.split("docs/operations.md#").nth(1).unwrap_or_else(|| panic!("{name}: {runbook}"));
        assert!(operations.contains(&format!("### {anchor}")), "{name}: docs/operations.md has no section `{anchor}`");
        assert!(tests.contains(&format!("alertname: {name}")), "{name} has no promtool unit test");
    }
}

#[test]
fn the_dockerfile_passes_hadolint_and_has_what_the_container_needs() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    for needed in [
        "AS build",
        "AS runtime",
        "USER 10001",
        "EXPOSE 9755",
        "HEALTHCHECK",
        "\"tally\", \"healthcheck\"",
        "STOPSIGNAL SIGTERM",
        "COPY sql/migrations",
    ] {
        assert!(dockerfile.contains(needed), "Dockerfile lacks {needed}");
    }
    let Some(hadolint) = tool("hadolint") else { return };
    for file in ["Dockerfile", "deploy/postgres.Dockerfile"] {
        let (ok, output) = run(&hadolint, &[file], repo());
        assert!(ok, "hadolint {file}:\n{output}");
    }
}

#[test]
fn the_compose_file_wires_postgres_tally_prometheus_and_grafana() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    for service in ["postgres", "tally", "prometheus", "grafana"] {
        assert!(services[service].is_object(), "no {service} service");
    }
    assert_eq!(services["postgres"]["image"], "tally-postgres:15");
    assert_eq!(services["postgres"]["build"]["dockerfile"], "deploy/postgres.Dockerfile");
    let postgres = std::fs::read_to_string(repo().join("deploy/postgres.Dockerfile")).unwrap();
    assert!(postgres.contains("FROM postgres:15") && postgres.contains("postgresql-${PG_MAJOR}-hll"), "{postgres}");
    assert!(postgres.contains("postgresql-${PG_MAJOR}-hypopg"), "{postgres}");
    let command: Vec<&str> =
        services["postgres"]["command"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(command.contains(&"shared_preload_libraries=pg_stat_statements"), "{command:?}");
    let init = std::fs::read_to_string(repo().join("deploy/postgres-init.sh")).unwrap();
    assert!(init.contains("CREATE EXTENSION IF NOT EXISTS hll"), "{init}");
    assert!(services["postgres"]["healthcheck"]["test"].is_array());
    assert_eq!(services["tally"]["depends_on"]["postgres"]["condition"], "service_healthy");
    assert!(services["tally"]["environment"]["DATABASE_URL"].as_str().unwrap().contains("@postgres:5432/marketing"));
    assert_eq!(services["tally"]["environment"]["TALLY_METRICS_ADDR"], "0.0.0.0:9755");
    // Every file the services mount exists in the repository.
    for service in ["postgres", "tally", "prometheus", "grafana"] {
        for volume in services[service]["volumes"].as_array().cloned().unwrap_or_default() {
            let source = volume.as_str().unwrap().split(':').next().unwrap().to_string();
            if source.starts_with("./") {
                assert!(repo().join(&source).exists(), "{service} mounts {source}, which does not exist");
            }
        }
    }
    let scrape = yaml("prometheus/prometheus.yml");
    assert_eq!(
        scrape["scrape_configs"][0]["static_configs"][0]["targets"][0], "tally:9755",
        "Prometheus scrapes the tally service"
    );
}

#[test]
fn grafana_provisioning_uses_fixed_uids_and_the_read_only_role() {
    let datasources = yaml("grafana/provisioning/datasources/tally.yml");
    let list = datasources["datasources"].as_array().unwrap();
    let postgres = list.iter().find(|d| d["uid"] == "tally-postgres").expect("the PostgreSQL datasource");
    assert_eq!(postgres["type"], "grafana-postgresql-datasource");
    assert_eq!(postgres["user"], "tally_reader");
    assert_eq!(postgres["jsonData"]["database"], "marketing");
    let prometheus = list.iter().find(|d| d["uid"] == "tally-prometheus").expect("the Prometheus datasource");
    assert_eq!(prometheus["type"], "prometheus");
    let providers = yaml("grafana/provisioning/dashboards/tally.yml");
    assert_eq!(providers["providers"][0]["options"]["path"], "/var/lib/grafana/dashboards/tally");

    // Every panel and variable uses one of the two provisioned datasources.
    for (name, text) in tally::dashboards::DASHBOARDS {
        let dashboard: Value = serde_json::from_str(text).unwrap();
        let mut pending = vec![dashboard.clone()];
        while let Some(node) = pending.pop() {
            if let Some(uid) = node.pointer("/datasource/uid").and_then(Value::as_str) {
                assert!(uid == "tally-postgres" || uid == "tally-prometheus", "{name}: datasource {uid}");
            }
            match node {
                Value::Object(map) => pending.extend(map.into_values()),
                Value::Array(items) => pending.extend(items),
                _ => {}
            }
        }
    }
}
