//! Monitoring checks: alert rules pass promtool; dashboards pass our lint; and, against the real
//! relay scraped by a real Prometheus (Debian's package, started here on loopback), every metric
//! that a dashboard or a rule names is exported, and every dashboard query returns data.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use darkswap_net::{NodeEvent, RelayStatus};
use darkswap_tests::{free_tcp_port, http_get, Peer, Ports, Relay};
use serde_json::Value;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

fn dashboards() -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dashboards_dir().join("grafana"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let json: Value = serde_json::from_slice(&std::fs::read(&path)?)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            out.push((path.display().to_string(), json));
        }
    }
    assert!(out.len() >= 3, "dashboards missing");
    Ok(out)
}

/// Every PromQL expression of every panel, with the panel's title.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or("?").to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((title.clone(), expr.to_string()));
            }
        }
    }
    out
}

fn rule_exprs() -> Result<Vec<String>> {
    // The rules file is YAML; its `expr:` values are plain or `|` blocks.
    let text = std::fs::read_to_string(dashboards_dir().join("alerts.yml"))?;
    let mut exprs = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest == "|" {
            let mut block = String::new();
            while let Some(next) = lines.peek() {
                if next.trim_start().starts_with("for:") {
                    break;
                }
                block.push_str(next.trim());
                block.push(' ');
                lines.next();
            }
            exprs.push(block);
        } else {
            exprs.push(rest.to_string());
        }
    }
    Ok(exprs)
}

/// Metric names in a PromQL expression: identifiers with one of our exporters' prefixes.
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| {
            ["darkswap_", "libp2p_", "process_"]
                .iter()
                .any(|p| t.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn alert_rules_pass_promtool() -> Result<()> {
    for args in [
        vec!["check", "rules", "alerts.yml"],
        vec!["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(dashboards_dir())
            .output()
            .context("promtool not found: install Debian's prometheus package")?;
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[test]
fn dashboards_pass_lint() -> Result<()> {
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards()? {
        let uid = d["uid"].as_str().unwrap_or_default().to_string();
        assert!(!uid.is_empty(), "{file}: no uid");
        assert!(uids.insert(uid.clone()), "{file}: uid {uid} used twice");
        assert!(
            d["schemaVersion"].as_u64() >= Some(36),
            "{file}: schemaVersion too old"
        );
        let vars = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            vars.iter()
                .any(|v| v["type"] == "datasource" && v["name"] == "datasource"),
            "{file}: no datasource variable"
        );
        let mut ids = BTreeSet::new();
        for panel in d["panels"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            assert!(
                ids.insert(panel["id"].as_u64()),
                "{file}: panel id repeated ({title})"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}: panel {title} hard-codes its datasource"
            );
            let unit = panel["fieldConfig"]["defaults"]["unit"].as_str();
            assert!(
                unit.is_some_and(|u| !u.is_empty()),
                "{file}: panel {title} has no unit"
            );
            for target in panel["targets"].as_array().into_iter().flatten() {
                assert_eq!(
                    target["datasource"]["uid"], "${datasource}",
                    "{file}: a query of {title} hard-codes its datasource"
                );
                let expr = target["expr"].as_str().unwrap_or_default();
                assert!(!expr.is_empty(), "{file}: panel {title} has an empty query");
                if expr.contains("rate(") {
                    assert!(
                        expr.contains("[$__rate_interval]"),
                        "{file}: panel {title} uses rate() without $__rate_interval"
                    );
                }
            }
        }
    }
    Ok(())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(scrape_target: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_tcp_port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
                 rule_files: [ {rules:?} ]\n\
                 scrape_configs:\n  - job_name: darkswap-relay\n    static_configs:\n      - targets: [ {scrape_target:?} ]\n",
                rules = dashboards_dir().join("alerts.yml").display().to_string(),
            ),
        )?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("prometheus not found: install Debian's prometheus package")?;
        let p = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(http_get(&format!("{}/-/ready", p.url)), Ok((200, _))) {
                return Ok(p);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("prometheus not ready within 30 s")
    }

    fn query(&self, expr: &str) -> Result<Vec<Value>> {
        let (status, body) = http_get(&format!(
            "{}/api/v1/query?query={}",
            self.url,
            percent_encode(expr)
        ))?;
        let json: Value = serde_json::from_str(&body)
            .with_context(|| format!("HTTP {status}, not JSON: {body}"))?;
        if json["status"] != "success" {
            bail!("query {expr} failed: {body}");
        }
        Ok(json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboards_and_rules_match_what_a_real_relay_exports() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &["--max-reservations", "2"])?;
    let prometheus = Prometheus::start(relay.http.trim_start_matches("http://"))?;

    // Traffic: two traders reserve and talk through a circuit; a third is refused a
    // reservation; one leaves, closing its circuit.
    let mut a = Peer::reserved_on(&relay).await?;
    let mut b = Peer::reserved_on(&relay).await?;
    let id = a.handle.send_message(b.id(), "hello".into())?;
    a.wait_for(Duration::from_secs(20), |e| match e {
        NodeEvent::MessageDelivered { id: got, .. } if *got == id => Some(()),
        _ => None,
    })
    .await?;
    let mut c = Peer::start(vec![relay.tcp_addr()]).await?;
    c.wait_for(Duration::from_secs(20), |e| {
        matches!(e, NodeEvent::Relay(RelayStatus::Failed { .. })).then_some(())
    })
    .await?;
    // Order gossip: b follows a pair and places an order; an order message that is not one is
    // refused and counted.
    let pair = darkswap_orderbook::Pair::parse("RUNE:MONITOR/BTC")?;
    b.handle
        .command(darkswap_net::Command::WatchPair { pair: pair.clone() })?;
    b.book_where(Duration::from_secs(20), &pair, |_| true)
        .await?;
    b.handle
        .place_order(pair.clone(), darkswap_tests::sell(10, 100))?;
    let mut raw = darkswap_tests::RawPublisher::connect(&relay, &pair).await?;
    raw.publish(b"not an order".to_vec()).await?;
    // Auth traffic: a wrong proof, and a reservation attempt without authenticating.
    let mut probe = darkswap_tests::probe::Probe::connect(
        &relay,
        darkswap_net::libp2p::identity::Keypair::generate_ed25519(),
    )
    .await?;
    let (nonce, expires) = probe.challenge(darkswap_auth::Method::Identity).await?;
    let wrong = probe.identity_answer(
        &darkswap_net::libp2p::identity::Keypair::generate_ed25519(),
        &nonce,
        expires,
    );
    probe.request(wrong).await?;
    probe.reserve().await?;
    b.book_where(Duration::from_secs(20), &pair, |v| v.total_orders == 1)
        .await?;
    drop(a);
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Every metric a dashboard or a rule names is in the relay's own scrape.
    let (_, scrape) = relay.get("/metrics")?;
    let exported: BTreeSet<&str> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut used = BTreeSet::new();
    let dashboards = dashboards()?;
    for (_, d) in &dashboards {
        for (_, expr) in panel_queries(d) {
            used.extend(metric_names(&expr));
        }
    }
    for expr in rule_exprs()? {
        used.extend(metric_names(&expr));
    }
    assert!(used.len() >= 15, "too few metric names found: {used:?}");
    let missing: Vec<&String> = used
        .iter()
        .filter(|m| !exported.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "named in dashboards/rules but not exported: {missing:?}"
    );

    // Every panel query returns data through Prometheus' HTTP API.
    let mut empty = Vec::new();
    for (file, d) in &dashboards {
        for (title, expr) in panel_queries(d) {
            let expr = expr
                .replace("$__rate_interval", "30s")
                .replace("$instance", ".*");
            let mut result = prometheus.query(&expr)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while result.is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(500)).await;
                result = prometheus.query(&expr)?;
            }
            if result.is_empty() {
                empty.push(format!("{file}: {title}: {expr}"));
            }
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty.join("\n")
    );

    // The rules load in the real Prometheus, and none fires for a healthy relay.
    let (_, rules) = http_get(&format!("{}/api/v1/rules", prometheus.url))?;
    let rules: Value = serde_json::from_str(&rules)?;
    let loaded = rules["data"]["groups"][0]["rules"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        loaded,
        rule_exprs()?.len(),
        "not every rule loaded: {rules}"
    );
    assert!(prometheus
        .query("ALERTS{alertstate=\"firing\"}")?
        .is_empty());
    Ok(())
}
