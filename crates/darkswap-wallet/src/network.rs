//! Which Bitcoin network a wallet lives on. Addresses, extended keys and the BIP44 coin type all
//! follow it, so a regtest wallet can never produce or accept a mainnet address.

use std::fmt;
use std::str::FromStr;

/// The networks a wallet can be created for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// Local test chain (`bitcoind -regtest`): what `scripts/serve --regtest` and the tests use.
    Regtest,
    /// The public signet.
    Signet,
    /// The public testnet (testnet3).
    Testnet,
    /// Real money. A page offers it only where its relay says so.
    Mainnet,
}

impl Network {
    /// Every network, in the order a settings list shows them.
    pub const ALL: [Network; 4] = [
        Network::Regtest,
        Network::Signet,
        Network::Testnet,
        Network::Mainnet,
    ];

    /// The BIP44 coin type in derivation paths: 0 on mainnet, 1 on every test network (BIP86
    /// follows BIP44 here, as every wallet that imports BIP86 keys expects).
    pub fn coin_type(self) -> u32 {
        match self {
            Network::Mainnet => 0,
            Network::Regtest | Network::Signet | Network::Testnet => 1,
        }
    }

    /// rust-bitcoin's network, for addresses and extended keys.
    pub fn to_bitcoin(self) -> bitcoin::Network {
        match self {
            Network::Regtest => bitcoin::Network::Regtest,
            Network::Signet => bitcoin::Network::Signet,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Mainnet => bitcoin::Network::Bitcoin,
        }
    }

    /// The name used in settings, relay-info and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Regtest => "regtest",
            Network::Signet => "signet",
            Network::Testnet => "testnet",
            Network::Mainnet => "mainnet",
        }
    }

    /// One byte for sealed records (the network is bound into the record's associated data).
    pub(crate) fn tag(self) -> u8 {
        match self {
            Network::Regtest => 1,
            Network::Signet => 2,
            Network::Testnet => 3,
            Network::Mainnet => 4,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Network> {
        Network::ALL.into_iter().find(|n| n.tag() == tag)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A network name that is none of [`Network::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network {0:?} (expected regtest, signet, testnet or mainnet)")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "regtest" => Ok(Network::Regtest),
            "signet" => Ok(Network::Signet),
            "testnet" | "testnet3" => Ok(Network::Testnet),
            "mainnet" | "bitcoin" => Ok(Network::Mainnet),
            other => Err(UnknownNetwork(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_tags_are_distinct() {
        for n in Network::ALL {
            assert_eq!(n.as_str().parse::<Network>().unwrap(), n);
            assert_eq!(Network::from_tag(n.tag()), Some(n));
        }
        assert_eq!(Network::from_tag(0), None);
        assert!("litecoin".parse::<Network>().is_err());
    }

    #[test]
    fn only_mainnet_uses_coin_type_zero() {
        assert_eq!(Network::Mainnet.coin_type(), 0);
        assert!(Network::ALL
            .iter()
            .filter(|n| **n != Network::Mainnet)
            .all(|n| n.coin_type() == 1));
    }
}
