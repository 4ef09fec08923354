//! The security audit log: one JSON object per line in `<data_dir>/audit.log` (rotated to
//! `audit.log.1` at a size cap), and the same line through tracing (target `audit`). Events:
//! auth success and failure, ban, unban, trust, untrust, rate limit, denial, each with the peer,
//! its address, the method and the reason. A flood cannot fill the disk or slow the relay: each
//! kind of event may write at most [`defaults::AUDIT_EVENTS_PER_SECOND`] lines a second, the
//! rest are counted; an administrator's actions (ban, unban, trust, untrust) are always
//! written, so a flood of one kind never hides them or another kind. They are also appended to
//! `<data_dir>/admin.log`, which is never rotated: a flood that rotates `audit.log` twice in a
//! few minutes used to take the record of a ban with it.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use libp2p::{Multiaddr, PeerId};
use prometheus_client::metrics::counter::Counter;

use crate::defaults;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AuthSuccess,
    AuthFailure,
    Ban,
    Unban,
    Trust,
    Untrust,
    RateLimit,
    Denial,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::AuthSuccess,
        Kind::AuthFailure,
        Kind::Ban,
        Kind::Unban,
        Kind::Trust,
        Kind::Untrust,
        Kind::RateLimit,
        Kind::Denial,
    ];

    /// Administrators' actions are rare and must never be lost.
    fn always_written(self) -> bool {
        matches!(self, Kind::Ban | Kind::Unban | Kind::Trust | Kind::Untrust)
    }

    fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }

    fn label(self) -> &'static str {
        match self {
            Kind::AuthSuccess => "auth_success",
            Kind::AuthFailure => "auth_failure",
            Kind::Ban => "ban",
            Kind::Unban => "unban",
            Kind::Trust => "trust",
            Kind::Untrust => "untrust",
            Kind::RateLimit => "rate_limit",
            Kind::Denial => "denial",
        }
    }
}

/// One event's fields (empty ones are left out of the line).
#[derive(Debug, Clone, Default)]
pub struct Fields<'a> {
    pub peer: Option<&'a PeerId>,
    pub addr: Option<&'a Multiaddr>,
    pub method: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub level: Option<&'a str>,
    pub operation: Option<&'a str>,
    /// The peer an admin action is about.
    pub target: Option<&'a PeerId>,
}

struct Writer {
    file: Option<File>,
    /// `admin.log`: administrators' actions only, never rotated.
    admin: Option<File>,
    written: u64,
    /// Per kind: the current one-second window, lines written in it, lines not written since
    /// the last written one.
    windows: [(u64, u32, u64); Kind::ALL.len()],
}

pub struct Audit {
    path: PathBuf,
    writer: Mutex<Writer>,
    dropped: Counter,
    /// Size at which `audit.log` is rotated.
    max_bytes: u64,
}

impl Audit {
    /// Opens (appends to) `<data_dir>/audit.log`. A log that cannot be opened is reported and
    /// the events still go to tracing.
    pub fn open(data_dir: &Path, dropped: Counter) -> Audit {
        Self::open_with_cap(data_dir, dropped, defaults::AUDIT_LOG_MAX_BYTES)
    }

    fn open_with_cap(data_dir: &Path, dropped: Counter, max_bytes: u64) -> Audit {
        let admin_path = data_dir.join("admin.log");
        let admin = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&admin_path)
            .map_err(|e| {
                tracing::error!(path = %admin_path.display(), "cannot open the admin log: {e}");
            })
            .ok();
        let path = data_dir.join("audit.log");
        let file = OpenOptions::new().create(true).append(true).open(&path);
        let (file, written) = match file {
            Ok(f) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                (Some(f), len)
            }
            Err(e) => {
                tracing::error!(path = %path.display(), "cannot open the audit log: {e}");
                (None, 0)
            }
        };
        Audit {
            path,
            writer: Mutex::new(Writer {
                file,
                admin,
                written,
                windows: [(0, 0, 0); Kind::ALL.len()],
            }),
            dropped,
            max_bytes,
        }
    }

    pub fn record(&self, kind: Kind, fields: Fields<'_>) {
        self.record_at(kind, fields, darkswap_proto::unix_time_ms());
    }

    fn record_at(&self, kind: Kind, f: Fields<'_>, now_ms: u64) {
        let Ok(mut w) = self.writer.lock() else {
            self.dropped.inc();
            return;
        };
        let (start, written, suppressed) = &mut w.windows[kind.index()];
        if now_ms.saturating_sub(*start) >= 1_000 {
            *start = now_ms;
            *written = 0;
        }
        if *written >= defaults::AUDIT_EVENTS_PER_SECOND && !kind.always_written() {
            *suppressed += 1;
            self.dropped.inc();
            return;
        }
        *written += 1;
        let suppressed_before = std::mem::take(suppressed);
        let mut line = serde_json::Map::new();
        line.insert("ts_ms".into(), now_ms.into());
        line.insert("event".into(), kind.label().into());
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                line.insert(k.into(), v.into());
            }
        };
        put("peer", f.peer.map(|p| p.to_base58()));
        put("addr", f.addr.map(|a| a.to_string()));
        put("method", f.method.map(str::to_string));
        put("reason", f.reason.map(str::to_string));
        put("level", f.level.map(str::to_string));
        put("operation", f.operation.map(str::to_string));
        put("target", f.target.map(|p| p.to_base58()));
        if suppressed_before > 0 {
            line.insert("suppressed_before".into(), suppressed_before.into());
        }
        let text = serde_json::Value::Object(line).to_string();
        tracing::info!(target: "audit", "{text}");
        if kind.always_written() {
            if let Some(admin) = w.admin.as_mut() {
                if writeln!(admin, "{text}").is_err() {
                    tracing::error!("cannot write to the admin log");
                }
            }
        }
        if w.written + text.len() as u64 + 1 > self.max_bytes {
            self.rotate(&mut w);
        }
        if let Some(file) = w.file.as_mut() {
            if writeln!(file, "{text}").is_ok() {
                w.written += text.len() as u64 + 1;
            }
        }
    }

    fn rotate(&self, w: &mut Writer) {
        w.file = None;
        let old = self.path.with_extension("log.1");
        if let Err(e) = std::fs::rename(&self.path, &old) {
            tracing::error!("cannot rotate the audit log: {e}");
        }
        w.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .ok();
        w.written = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_and_floods_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let dropped = Counter::default();
        let audit = Audit::open(dir.path(), dropped.clone());
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let n = defaults::AUDIT_EVENTS_PER_SECOND + 10;
        for _ in 0..n {
            audit.record_at(
                Kind::AuthFailure,
                Fields {
                    peer: Some(&peer),
                    method: Some("identity"),
                    reason: Some("wrong_proof"),
                    ..Fields::default()
                },
                5_000,
            );
        }
        // Another kind, and an administrator's action, are written during the flood.
        audit.record_at(Kind::Denial, Fields::default(), 5_000);
        for _ in 0..(2 * defaults::AUDIT_EVENTS_PER_SECOND) {
            audit.record_at(Kind::Ban, Fields::default(), 5_000);
        }
        audit.record_at(Kind::AuthFailure, Fields::default(), 6_000);
        let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let per_second = defaults::AUDIT_EVENTS_PER_SECOND as usize;
        assert_eq!(lines.len(), per_second + 1 + 2 * per_second + 1);
        assert_eq!(lines[0]["event"], "auth_failure");
        assert_eq!(lines[0]["peer"], peer.to_base58());
        assert_eq!(lines[0]["reason"], "wrong_proof");
        assert_eq!(lines[per_second]["event"], "denial");
        assert_eq!(lines.last().unwrap()["event"], "auth_failure");
        assert_eq!(lines.last().unwrap()["suppressed_before"], 10);
        assert_eq!(dropped.get(), 10);
    }

    #[test]
    fn a_ban_outlives_any_number_of_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open_with_cap(dir.path(), Counter::default(), 4_096);
        let banned = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        audit.record_at(
            Kind::Ban,
            Fields {
                target: Some(&banned),
                reason: Some("spam"),
                ..Fields::default()
            },
            1_000,
        );
        // A flood of denials, one second after another: many rotations of audit.log.
        for second in 2..200u64 {
            for _ in 0..defaults::AUDIT_EVENTS_PER_SECOND {
                audit.record_at(Kind::Denial, Fields::default(), second * 1_000);
            }
        }
        let rotated = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap()
            + &std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        assert!(!rotated.contains(&banned.to_base58()), "rotated away");
        let admin = std::fs::read_to_string(dir.path().join("admin.log")).unwrap();
        let lines: Vec<serde_json::Value> = admin
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "only administrators' actions");
        assert_eq!(lines[0]["event"], "ban");
        assert_eq!(lines[0]["target"], banned.to_base58());
    }
}
