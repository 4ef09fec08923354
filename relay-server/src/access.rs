//! Who may do what on this relay: the config's listed peers, the bans and trusted peers changed
//! through the admin API (kept in `<data_dir>/access.json`, so they survive a restart), and the
//! levels peers obtained by authenticating on their current connection. The level check for
//! every operation goes through [`Access::permits`], against the one table in darkswap-auth.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use darkswap_auth::level::permits;
use darkswap_auth::token::Claims;
use darkswap_auth::{Level, Method, Operation, RefuseReason};
use darkswap_proto::auth::AdminEntry;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;
use crate::defaults;

const ACCESS_FILE: &str = "access.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct BanRecord {
    since_ms: u64,
    reason: String,
}

/// What the admin API changed (persisted).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Runtime {
    #[serde(default)]
    bans: BTreeMap<String, BanRecord>,
    /// PeerId → since (ms).
    #[serde(default)]
    trusted: BTreeMap<String, u64>,
    /// Tokens issued to these peers before this time (ms) are revoked (set by a ban).
    #[serde(default)]
    revoked_before: BTreeMap<String, u64>,
}

/// A level obtained on the current connection, until the token's expiry.
#[derive(Debug, Clone, Copy)]
struct Grant {
    level: Level,
    expires_at_ms: u64,
}

pub struct Access {
    config: AuthConfig,
    /// Configured peer relays: trusted (they forward many makers' messages).
    relay_peers: HashSet<PeerId>,
    /// Relays accepted when they prove themselves ([`Method::Relay`]) besides the configured
    /// ones, and whether any relay with a valid record is.
    federate_with: HashSet<PeerId>,
    federate_any: bool,
    bans: HashMap<PeerId, BanRecord>,
    trusted: HashMap<PeerId, u64>,
    revoked_before: HashMap<PeerId, u64>,
    path: PathBuf,
    /// Bounded by the connected peers: an entry leaves when the peer's last connection closes.
    grants: HashMap<PeerId, Grant>,
}

/// Why an admin change to the access lists was refused (nothing changed then).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("an admin listed in the config file cannot be banned at run time")]
    ConfigAdmin,
    #[error("banned in the config file; remove it there")]
    ConfigBan,
    #[error("not banned")]
    NotBanned,
    #[error("banned; unban first")]
    Banned,
    #[error("not trusted at run time (a config entry stays)")]
    NotTrusted,
    #[error("the access list is full")]
    Full,
    #[error("cannot encode the access list: {0}")]
    Encode(serde_json::Error),
    #[error("cannot write {path}: {source}")]
    Save {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Why the access file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("access list {path}: {message}")]
pub struct AccessError {
    path: PathBuf,
    message: String,
}

fn parse_map<T: Clone>(
    path: &Path,
    map: &BTreeMap<String, T>,
) -> Result<HashMap<PeerId, T>, AccessError> {
    map.iter()
        .map(|(k, v)| {
            k.parse::<PeerId>()
                .map(|p| (p, v.clone()))
                .map_err(|_| AccessError {
                    path: path.to_path_buf(),
                    message: format!("{k:?} is not a PeerId"),
                })
        })
        .collect()
}

impl Access {
    /// Loads the runtime lists from `data_dir`. A missing file is an empty list; an unreadable
    /// or corrupt one stops the relay (it must not forget its bans silently).
    pub fn load(
        config: AuthConfig,
        relay_peers: HashSet<PeerId>,
        data_dir: &Path,
    ) -> Result<Self, AccessError> {
        let path = data_dir.join(ACCESS_FILE);
        let runtime: Runtime = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AccessError {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Runtime::default(),
            Err(e) => {
                return Err(AccessError {
                    path,
                    message: e.to_string(),
                })
            }
        };
        let mut access = Access {
            bans: parse_map(&path, &runtime.bans)?,
            trusted: parse_map(&path, &runtime.trusted)?,
            revoked_before: parse_map(&path, &runtime.revoked_before)?,
            config,
            relay_peers,
            federate_with: HashSet::new(),
            federate_any: false,
            path,
            grants: HashMap::new(),
        };
        access.prune_revocations(darkswap_proto::unix_time_ms());
        Ok(access)
    }

    /// The federation policy: relays in `with` (besides the configured peer relays), or any
    /// relay when `any`, become peer relays when they prove themselves.
    pub fn federate(mut self, with: impl IntoIterator<Item = PeerId>, any: bool) -> Self {
        self.federate_with = with.into_iter().collect();
        self.federate_any = any;
        self
    }

    fn save(&self) -> Result<(), ChangeError> {
        let runtime = Runtime {
            bans: self
                .bans
                .iter()
                .map(|(p, r)| (p.to_base58(), r.clone()))
                .collect(),
            trusted: self
                .trusted
                .iter()
                .map(|(p, t)| (p.to_base58(), *t))
                .collect(),
            revoked_before: self
                .revoked_before
                .iter()
                .map(|(p, t)| (p.to_base58(), *t))
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&runtime).map_err(ChangeError::Encode)?;
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|source| ChangeError::Save {
            path: self.path.clone(),
            source,
        })
    }

    fn listed(&self, peer: &PeerId) -> Option<Level> {
        self.config.peers.get(peer).copied()
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.contains_key(peer) || self.listed(peer) == Some(Level::Banned)
    }

    /// Every banned peer (config and admin API).
    pub fn banned(&self) -> Vec<PeerId> {
        let mut out: Vec<PeerId> = self.bans.keys().copied().collect();
        out.extend(
            self.config
                .peers
                .iter()
                .filter(|(_, l)| **l == Level::Banned)
                .map(|(p, _)| *p),
        );
        out
    }

    /// The level a peer has now, before or after authenticating.
    pub fn level(&self, peer: &PeerId, now_ms: u64) -> Level {
        if self.is_banned(peer) {
            return Level::Banned;
        }
        let mut level = if self.config.open {
            Level::Authenticated
        } else {
            Level::Anonymous
        };
        if self.config.public_key {
            if let Some(listed) = self.listed(peer) {
                level = level.max(listed);
            }
        }
        if self.relay_peers.contains(peer) || self.trusted.contains_key(peer) {
            level = level.max(Level::Trusted);
        }
        if let Some(grant) = self.grants.get(peer) {
            if now_ms < grant.expires_at_ms {
                level = level.max(grant.level);
            }
        }
        level
    }

    /// The level a peer has without proving anything on this connection (open relay, the
    /// allowlist, peer relays, run-time trust), with the method that gives it; `None` below
    /// Authenticated.
    pub fn standing(&self, peer: &PeerId) -> Option<(Level, Method)> {
        if self.is_banned(peer) {
            return None;
        }
        let mut best: Option<(Level, Method)> = None;
        let mut offer = |level: Level, method: Method| {
            if level >= Level::Authenticated && best.is_none_or(|(l, _)| level > l) {
                best = Some((level, method));
            }
        };
        if self.config.open {
            offer(Level::Authenticated, Method::Open);
        }
        if self.config.public_key {
            if let Some(listed) = self.listed(peer) {
                offer(listed, Method::PublicKey);
            }
        }
        if self.relay_peers.contains(peer) || self.trusted.contains_key(peer) {
            offer(Level::Trusted, Method::PublicKey);
        }
        best
    }

    /// Whether `peer` may do `op` now; otherwise the level it has.
    pub fn permits(&self, peer: &PeerId, op: Operation, now_ms: u64) -> Result<(), Level> {
        let level = self.level(peer, now_ms);
        if permits(level, op) {
            Ok(())
        } else {
            Err(level)
        }
    }

    /// The level proving oneself by `method` earns `peer` now.
    pub fn entitlement(&self, peer: &PeerId, method: Method) -> Result<Level, RefuseReason> {
        if self.is_banned(peer) {
            return Err(RefuseReason::Banned);
        }
        let mut listed = self.listed(peer).unwrap_or(Level::Anonymous);
        if self.trusted.contains_key(peer) || self.relay_peers.contains(peer) {
            listed = listed.max(Level::Trusted);
        }
        match method {
            Method::SharedKey => {
                if self.config.shared_key.is_none() {
                    return Err(RefuseReason::MethodDisabled);
                }
                Ok(self.config.shared_key_level.max(listed))
            }
            Method::Identity => {
                if !self.config.identity {
                    return Err(RefuseReason::MethodDisabled);
                }
                if listed >= Level::Authenticated {
                    Ok(listed)
                } else if self.config.identity_anyone {
                    Ok(Level::Authenticated)
                } else {
                    Err(RefuseReason::NotAllowed)
                }
            }
            // A relay that proves itself and that the federation policy accepts forwards every
            // trader's orders: it needs the trusted level to.
            Method::Relay => {
                if self.federate_any
                    || self.relay_peers.contains(peer)
                    || self.federate_with.contains(peer)
                {
                    Ok(Level::Trusted)
                } else {
                    Err(RefuseReason::NotAllowed)
                }
            }
            Method::PublicKey | Method::Token | Method::Open => Err(RefuseReason::MethodDisabled),
        }
    }

    /// The level a verified token's claims earn now: never more than the method that earned
    /// the token would earn today, nothing if the peer was banned since it was issued.
    pub fn token_level(&self, claims: &Claims) -> Result<Level, RefuseReason> {
        if self.is_banned(&claims.peer) {
            return Err(RefuseReason::Banned);
        }
        // Earned with a shared key: only while that key is still the relay's (a rotated key
        // revokes what the old one earned; a token naming no key is refused too).
        if claims.method == Method::SharedKey
            && (claims.shared_key.is_none()
                || claims.shared_key != self.config.shared_key.as_ref().map(|k| k.fingerprint()))
        {
            return Err(RefuseReason::RevokedToken);
        }
        if self
            .revoked_before
            .get(&claims.peer)
            .is_some_and(|t| claims.issued_at_ms < *t)
        {
            return Err(RefuseReason::RevokedToken);
        }
        Ok(claims
            .level
            .min(self.entitlement(&claims.peer, claims.method)?))
    }

    pub fn grant(&mut self, peer: PeerId, level: Level, expires_at_ms: u64) {
        self.grants.insert(
            peer,
            Grant {
                level,
                expires_at_ms,
            },
        );
    }

    /// The peer's last connection closed.
    pub fn forget(&mut self, peer: &PeerId) {
        self.grants.remove(peer);
    }

    /// Bans and run-time trusted peers (revocation marks are pruned as their tokens expire and
    /// do not count).
    fn runtime_entries(&self) -> usize {
        self.bans.len() + self.trusted.len()
    }

    /// Drops revocation marks older than a token's lifetime: every token issued before them
    /// has expired anyway.
    fn prune_revocations(&mut self, now_ms: u64) {
        let ttl = u64::try_from(self.config.token_ttl.as_millis()).unwrap_or(u64::MAX);
        self.revoked_before
            .retain(|_, at| at.saturating_add(ttl) > now_ms);
    }

    /// Applies a change and persists it; if it cannot be persisted, the change is undone, so
    /// memory and disk never disagree.
    fn change(&mut self, apply: impl FnOnce(&mut Self)) -> Result<(), ChangeError> {
        let saved = (
            self.bans.clone(),
            self.trusted.clone(),
            self.revoked_before.clone(),
        );
        apply(self);
        if let Err(e) = self.save() {
            (self.bans, self.trusted, self.revoked_before) = saved;
            return Err(e);
        }
        Ok(())
    }

    pub fn ban(&mut self, peer: PeerId, reason: String, now_ms: u64) -> Result<(), ChangeError> {
        if self.listed(&peer) == Some(Level::Admin) {
            return Err(ChangeError::ConfigAdmin);
        }
        if !self.bans.contains_key(&peer)
            && self.runtime_entries() + 1 > defaults::AUTH_MAX_RUNTIME_ENTRIES
        {
            return Err(ChangeError::Full);
        }
        self.change(|a| {
            a.prune_revocations(now_ms);
            a.bans.insert(
                peer,
                BanRecord {
                    since_ms: now_ms,
                    reason,
                },
            );
            // Every token issued up to now is worthless, even after an unban.
            a.revoked_before.insert(peer, now_ms.saturating_add(1));
            a.trusted.remove(&peer);
        })?;
        self.grants.remove(&peer);
        Ok(())
    }

    pub fn unban(&mut self, peer: &PeerId) -> Result<(), ChangeError> {
        if self.listed(peer) == Some(Level::Banned) {
            return Err(ChangeError::ConfigBan);
        }
        if !self.bans.contains_key(peer) {
            return Err(ChangeError::NotBanned);
        }
        self.change(|a| {
            a.bans.remove(peer);
        })
    }

    pub fn trust(&mut self, peer: PeerId, now_ms: u64) -> Result<(), ChangeError> {
        if self.is_banned(&peer) {
            return Err(ChangeError::Banned);
        }
        if !self.trusted.contains_key(&peer)
            && self.runtime_entries() + 1 > defaults::AUTH_MAX_RUNTIME_ENTRIES
        {
            return Err(ChangeError::Full);
        }
        self.change(|a| {
            a.trusted.insert(peer, now_ms);
        })
    }

    pub fn untrust(&mut self, peer: &PeerId) -> Result<(), ChangeError> {
        if !self.trusted.contains_key(peer) {
            return Err(ChangeError::NotTrusted);
        }
        self.change(|a| {
            a.trusted.remove(peer);
        })?;
        // A grant made while it was trusted must not outlive the trust: it proves itself again.
        self.grants.remove(peer);
        Ok(())
    }

    /// The access lists, for the admin API (config entries first).
    pub fn entries(&self) -> Vec<AdminEntry> {
        let mut out: Vec<AdminEntry> = self
            .config
            .peers
            .iter()
            .map(|(peer, level)| AdminEntry {
                peer: *peer,
                level: *level,
                note: "config".into(),
                since_ms: 0,
            })
            .collect();
        out.extend(self.bans.iter().map(|(peer, r)| AdminEntry {
            peer: *peer,
            level: Level::Banned,
            note: r.reason.clone(),
            since_ms: r.since_ms,
        }));
        out.extend(self.trusted.iter().map(|(peer, since)| AdminEntry {
            peer: *peer,
            level: Level::Trusted,
            note: "admin API".into(),
            since_ms: *since,
        }));
        out.truncate(darkswap_proto::auth::MAX_ADMIN_ENTRIES);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cli, Config};

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn access(dir: &Path, tweak: impl FnOnce(&mut AuthConfig)) -> Access {
        let mut config = Config::from_cli(Cli::default()).unwrap().auth;
        tweak(&mut config);
        Access::load(config, HashSet::new(), dir).unwrap()
    }

    #[test]
    fn defaults_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let a = access(dir.path(), |_| {});
        let p = peer();
        assert_eq!(a.level(&p, 0), Level::Anonymous);
        assert_eq!(a.permits(&p, Operation::Reserve, 0), Err(Level::Anonymous));
        assert_eq!(
            a.permits(&p, Operation::PublishOrder, 0),
            Err(Level::Anonymous)
        );
        assert!(a.permits(&p, Operation::Connect, 0).is_ok());
        assert_eq!(
            a.entitlement(&p, Method::Identity),
            Ok(Level::Authenticated)
        );
        assert_eq!(
            a.entitlement(&p, Method::SharedKey),
            Err(RefuseReason::MethodDisabled)
        );
    }

    #[test]
    fn grants_expire_and_leave_with_the_peer() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = access(dir.path(), |_| {});
        let p = peer();
        a.grant(p, Level::Authenticated, 1_000);
        assert!(a.permits(&p, Operation::Reserve, 999).is_ok());
        assert!(a.permits(&p, Operation::Reserve, 1_000).is_err());
        a.grant(p, Level::Authenticated, 5_000);
        a.forget(&p);
        assert!(a.permits(&p, Operation::Reserve, 10).is_err());
    }

    #[test]
    fn bans_survive_a_restart_and_revoke_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let p = peer();
        // Real times: loading prunes revocation marks older than a token's lifetime.
        let now = darkswap_proto::unix_time_ms();
        {
            let mut a = access(dir.path(), |_| {});
            a.grant(p, Level::Authenticated, u64::MAX);
            a.ban(p, "spam".into(), now).unwrap();
            assert_eq!(a.level(&p, 0), Level::Banned);
        }
        let mut a = access(dir.path(), |_| {});
        assert_eq!(a.level(&p, 0), Level::Banned);
        let claims = Claims {
            relay: peer(),
            peer: p,
            level: Level::Authenticated,
            method: Method::Identity,
            issued_at_ms: now - 1_000,
            expires_at_ms: u64::MAX,
            shared_key: None,
            stamp_bits: 0,
        };
        assert_eq!(a.token_level(&claims), Err(RefuseReason::Banned));
        a.unban(&p).unwrap();
        assert_eq!(a.token_level(&claims), Err(RefuseReason::RevokedToken));
        let fresh = Claims {
            issued_at_ms: now + 1_000,
            ..claims
        };
        assert_eq!(a.token_level(&fresh), Ok(Level::Authenticated));
        assert!(a.unban(&p).is_err(), "not banned any more");
    }

    /// Only relays the policy names (or any, when it says so) earn anything by the relay
    /// method, and a banned one earns nothing.
    #[test]
    fn the_federation_policy_decides_which_relays_are_peers() {
        let dir = tempfile::tempdir().unwrap();
        let (listed, stranger) = (peer(), peer());
        let a = access(dir.path(), |_| ()).federate([listed], false);
        assert_eq!(a.entitlement(&listed, Method::Relay), Ok(Level::Trusted));
        assert_eq!(
            a.entitlement(&stranger, Method::Relay),
            Err(RefuseReason::NotAllowed)
        );
        let mut open = access(dir.path(), |_| ()).federate([], true);
        assert_eq!(
            open.entitlement(&stranger, Method::Relay),
            Ok(Level::Trusted)
        );
        open.ban(stranger, "test".into(), 0).unwrap();
        assert_eq!(
            open.entitlement(&stranger, Method::Relay),
            Err(RefuseReason::Banned)
        );
    }

    #[test]
    fn a_token_earned_with_a_rotated_shared_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = darkswap_auth::proof::SharedKey::new(b"the operator's first secret").unwrap();
        let new = darkswap_auth::proof::SharedKey::new(b"the operator's second secret").unwrap();
        let a = access(dir.path(), |c| {
            c.shared_key = darkswap_auth::proof::SharedKey::new(b"the operator's second secret")
        });
        let claims = |shared_key| Claims {
            relay: peer(),
            peer: peer(),
            level: Level::Authenticated,
            method: Method::SharedKey,
            issued_at_ms: 0,
            expires_at_ms: u64::MAX,
            shared_key,
            stamp_bits: 0,
        };
        assert_eq!(
            a.token_level(&claims(Some(new.fingerprint()))),
            Ok(Level::Authenticated)
        );
        assert_eq!(
            a.token_level(&claims(Some(old.fingerprint()))),
            Err(RefuseReason::RevokedToken)
        );
        assert_eq!(
            a.token_level(&claims(None)),
            Err(RefuseReason::RevokedToken)
        );
    }

    #[test]
    fn listed_levels_and_allowlist_only() {
        let dir = tempfile::tempdir().unwrap();
        let (admin, banned, stranger) = (peer(), peer(), peer());
        let mut a = access(dir.path(), |c| {
            c.identity_anyone = false;
            c.peers.insert(admin, Level::Admin);
            c.peers.insert(banned, Level::Banned);
        });
        assert_eq!(a.level(&admin, 0), Level::Admin, "public key: on connect");
        assert!(a.permits(&admin, Operation::Ban, 0).is_ok());
        assert_eq!(a.level(&banned, 0), Level::Banned);
        assert_eq!(
            a.entitlement(&stranger, Method::Identity),
            Err(RefuseReason::NotAllowed)
        );
        assert!(a.ban(admin, "x".into(), 1).is_err());
        assert!(a.unban(&banned).is_err(), "config bans stay");
        // A token can never carry more than the method earns today.
        a.trust(stranger, 1).unwrap();
        let claims = Claims {
            relay: peer(),
            peer: stranger,
            level: Level::Admin,
            method: Method::Identity,
            issued_at_ms: 0,
            expires_at_ms: u64::MAX,
            shared_key: None,
            stamp_bits: 0,
        };
        assert_eq!(a.token_level(&claims), Ok(Level::Trusted));
    }

    #[test]
    fn a_change_that_cannot_be_saved_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = access(dir.path(), |_| {});
        let p = peer();
        // The access file's place is taken by a directory: saving fails.
        std::fs::create_dir(dir.path().join(ACCESS_FILE)).unwrap();
        assert!(a.ban(p, "x".into(), 1).is_err());
        assert_eq!(a.level(&p, 0), Level::Anonymous, "not half-banned");
        assert!(a.trust(p, 1).is_err());
        assert!(a.standing(&p).is_none());
    }

    #[test]
    fn revocations_expire_with_the_tokens_and_do_not_fill_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = access(dir.path(), |c| {
            c.token_ttl = std::time::Duration::from_secs(10);
        });
        let p = peer();
        a.ban(p, "x".into(), 1_000).unwrap();
        a.unban(&p).unwrap();
        assert_eq!(a.revoked_before.len(), 1);
        // Long after every token from before the ban expired, the mark goes with the next ban.
        a.ban(peer(), "y".into(), 1_000_000).unwrap();
        assert!(!a.revoked_before.contains_key(&p));
    }

    #[test]
    fn standing_levels_and_untrust() {
        let dir = tempfile::tempdir().unwrap();
        let p = peer();
        let mut open = access(dir.path(), |c| c.open = true);
        assert_eq!(
            open.standing(&p),
            Some((Level::Authenticated, Method::Open))
        );
        open.trust(p, 1).unwrap();
        assert_eq!(open.standing(&p), Some((Level::Trusted, Method::PublicKey)));
        open.grant(p, Level::Trusted, u64::MAX);
        open.untrust(&p).unwrap();
        assert_eq!(
            open.level(&p, 0),
            Level::Authenticated,
            "the trusted grant is gone"
        );
        let dir = tempfile::tempdir().unwrap();
        let closed = access(dir.path(), |_| {});
        assert_eq!(closed.standing(&p), None);
    }

    #[test]
    fn a_corrupt_access_file_stops_the_relay() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ACCESS_FILE), b"{ not json").unwrap();
        let config = Config::from_cli(Cli::default()).unwrap().auth;
        assert!(Access::load(config, HashSet::new(), dir.path()).is_err());
    }
}
