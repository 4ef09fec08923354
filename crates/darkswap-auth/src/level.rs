//! Authorization levels and the one table mapping relay operations to the level they need.

pub use darkswap_proto::auth::Level;

/// Everything a relay lets a peer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Keep a connection open (and read the public order book).
    Connect,
    /// Hold a circuit-relay reservation (be reachable by other traders).
    Reserve,
    /// Open a relayed circuit to another trader.
    OpenCircuit,
    /// Publish order messages through the relay's gossip.
    PublishOrder,
    /// Ask who else is reachable through the relay.
    ReadDirectory,
    /// Exceed the per-peer rate limits (peer relays forward many makers' messages).
    SkipRateLimits,
    /// Read the relay's access lists (bans, trusted peers).
    ReadAdminData,
    /// Ban a peer: its connections are closed and refused, and its tokens revoked.
    Ban,
    /// Lift a ban made at run time.
    Unban,
    /// Mark a peer trusted or take that back.
    Trust,
}

impl Operation {
    /// Every operation, in the order of [`Operation::index`].
    pub const ALL: [Operation; 10] = [
        Operation::Connect,
        Operation::Reserve,
        Operation::OpenCircuit,
        Operation::PublishOrder,
        Operation::ReadDirectory,
        Operation::SkipRateLimits,
        Operation::ReadAdminData,
        Operation::Ban,
        Operation::Unban,
        Operation::Trust,
    ];

    /// Its position in [`Operation::ALL`]. An exhaustive match: a new operation does not compile
    /// until it has a place there, and a test then wants its row in [`PERMISSIONS`].
    pub const fn index(self) -> usize {
        match self {
            Operation::Connect => 0,
            Operation::Reserve => 1,
            Operation::OpenCircuit => 2,
            Operation::PublishOrder => 3,
            Operation::ReadDirectory => 4,
            Operation::SkipRateLimits => 5,
            Operation::ReadAdminData => 6,
            Operation::Ban => 7,
            Operation::Unban => 8,
            Operation::Trust => 9,
        }
    }

    /// Its name in metrics, logs and the README.
    pub fn label(self) -> &'static str {
        match self {
            Operation::Connect => "connect",
            Operation::Reserve => "reserve",
            Operation::OpenCircuit => "open_circuit",
            Operation::PublishOrder => "publish_order",
            Operation::ReadDirectory => "read_directory",
            Operation::SkipRateLimits => "skip_rate_limits",
            Operation::ReadAdminData => "read_admin_data",
            Operation::Ban => "ban",
            Operation::Unban => "unban",
            Operation::Trust => "trust",
        }
    }
}

/// THE table: the level each operation needs. The README prints it (a test keeps them equal).
pub const PERMISSIONS: [(Operation, Level); 10] = [
    (Operation::Connect, Level::Anonymous),
    (Operation::Reserve, Level::Authenticated),
    (Operation::OpenCircuit, Level::Authenticated),
    (Operation::PublishOrder, Level::Authenticated),
    (Operation::ReadDirectory, Level::Authenticated),
    (Operation::SkipRateLimits, Level::Trusted),
    (Operation::ReadAdminData, Level::Admin),
    (Operation::Ban, Level::Admin),
    (Operation::Unban, Level::Admin),
    (Operation::Trust, Level::Admin),
];

/// The level `op` needs; `None` (never permitted) for an operation missing from the table.
pub fn required_level(op: Operation) -> Option<Level> {
    PERMISSIONS
        .iter()
        .find(|(o, _)| *o == op)
        .map(|(_, level)| *level)
}

/// Whether a peer at `level` may do `op`. Banned peers may do nothing, whatever the table says.
pub fn permits(level: Level, op: Operation) -> bool {
    level != Level::Banned && required_level(op).is_some_and(|needed| level >= needed)
}

/// The table as Markdown, as the README prints it.
pub fn permissions_markdown() -> String {
    let mut out = String::from("| operation | level needed |\n|---|---|\n");
    for (op, level) in PERMISSIONS {
        out.push_str(&format!("| {} | {} |\n", op.label(), level.label()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered() {
        for pair in Level::ALL.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        for level in Level::ALL {
            assert_eq!(Level::from_wire(level.to_wire()), Some(level));
            assert_eq!(Level::parse(level.label()), Some(level));
        }
        assert_eq!(Level::from_wire(5), None);
    }

    #[test]
    fn every_operation_has_a_row() {
        for (i, op) in Operation::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i, "{op:?} is out of place in Operation::ALL");
            assert!(
                required_level(op).is_some(),
                "{op:?} has no row in PERMISSIONS"
            );
        }
    }

    #[test]
    fn every_operation_is_in_the_table_once() {
        let mut seen = std::collections::HashSet::new();
        for (op, _) in PERMISSIONS {
            assert!(seen.insert(op), "{op:?} twice");
        }
        assert_eq!(seen.len(), PERMISSIONS.len());
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn the_readme_prints_the_table() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let text = std::fs::read_to_string(readme).unwrap();
        assert!(
            text.contains(&permissions_markdown()),
            "README's permission table differs from the code's:\n{}",
            permissions_markdown()
        );
    }

    #[test]
    fn banned_peers_may_do_nothing_and_admins_everything() {
        for (op, _) in PERMISSIONS {
            assert!(!permits(Level::Banned, op), "{op:?}");
            assert!(permits(Level::Admin, op), "{op:?}");
        }
        assert!(permits(Level::Anonymous, Operation::Connect));
        assert!(!permits(Level::Anonymous, Operation::Reserve));
        assert!(!permits(Level::Anonymous, Operation::PublishOrder));
        assert!(permits(Level::Authenticated, Operation::OpenCircuit));
        assert!(!permits(Level::Trusted, Operation::Ban));
    }
}
