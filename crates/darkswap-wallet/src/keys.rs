//! BIP32 keys for BIP86 (single-key taproot) addresses, in two accounts:
//!
//! - **payment**, `m/86'/coin'/0'/chain/index`: the bitcoin the wallet spends and pays fees with;
//! - **runes**, `m/86'/coin'/1'/chain/index`: outputs that hold runes, kept apart so they are
//!   never picked as fee money.
//!
//! Why the runes get the second account and not the first: a trader who imports the mnemonic
//! into an ordinary BIP86 wallet (which scans account 0 only) sees their bitcoin there, and that
//! wallet, which knows nothing of runes, cannot spend a rune output as fee and burn it.
//! `coin` is 0 on mainnet and 1 on the test networks ([`Network::coin_type`]).

use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv, Xpub};
use bitcoin::key::{Keypair, TapTweak, TweakedPublicKey, XOnlyPublicKey};
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Address, ScriptBuf};

use crate::mnemonic::Mnemonic;
use crate::network::Network;

/// Which of the wallet's two accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// Plain bitcoin: spent for payments and fees.
    Payment,
    /// Outputs that carry runes.
    Runes,
}

impl Account {
    /// The BIP32 account number (hardened).
    pub fn number(self) -> u32 {
        match self {
            Account::Payment => 0,
            Account::Runes => 1,
        }
    }
}

/// Receiving addresses (external) or change (internal), as in BIP44.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chain {
    /// Addresses handed to others.
    External,
    /// Change addresses.
    Internal,
}

impl Chain {
    fn number(self) -> u32 {
        match self {
            Chain::External => 0,
            Chain::Internal => 1,
        }
    }
}

/// Where one of the wallet's keys sits below its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPath {
    /// The account.
    pub account: Account,
    /// External or change.
    pub chain: Chain,
    /// The address index (non-hardened, below 2^31).
    pub index: u32,
}

impl KeyPath {
    /// A receiving address of `account`.
    pub fn receive(account: Account, index: u32) -> KeyPath {
        KeyPath {
            account,
            chain: Chain::External,
            index,
        }
    }

    /// A change address of `account`.
    pub fn change(account: Account, index: u32) -> KeyPath {
        KeyPath {
            account,
            chain: Chain::Internal,
            index,
        }
    }

    /// The full BIP32 path on `network`.
    pub fn derivation_path(&self, network: Network) -> Result<DerivationPath, KeyError> {
        Ok(DerivationPath::from(vec![
            hardened(86)?,
            hardened(network.coin_type())?,
            hardened(self.account.number())?,
            normal(self.chain.number())?,
            normal(self.index)?,
        ]))
    }
}

fn hardened(i: u32) -> Result<ChildNumber, KeyError> {
    ChildNumber::from_hardened_idx(i).map_err(KeyError::Derivation)
}

fn normal(i: u32) -> Result<ChildNumber, KeyError> {
    ChildNumber::from_normal_idx(i).map_err(KeyError::Derivation)
}

/// A key derivation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// BIP32 refused (an index of 2^31 or more, or the astronomically unlikely invalid child).
    #[error("key derivation failed: {0}")]
    Derivation(#[source] bitcoin::bip32::Error),
}

/// One derived BIP86 address with its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// Where it sits.
    pub path: KeyPath,
    /// The untweaked x-only key (BIP86 `internal_key`).
    pub internal_key: XOnlyPublicKey,
    /// The taproot output key, tweaked with no script tree (BIP86 `output_key`).
    pub output_key: TweakedPublicKey,
    /// `OP_1 <output key>`.
    pub script_pubkey: ScriptBuf,
    /// The address on the keychain's network.
    pub address: Address,
}

/// The wallet's keys, derived from a mnemonic: the two account keys, erased when dropped (the
/// master key is erased as soon as they are derived).
pub struct Keychain {
    network: Network,
    secp: Secp256k1<All>,
    /// `m/86'/coin'/0'` and `m/86'/coin'/1'`, derived once: each address is then two
    /// non-hardened steps instead of five (signing derives a key per input, twice).
    accounts: [Xpriv; 2],
}

impl Keychain {
    /// The keychain of `mnemonic` (with an optional BIP39 passphrase) on `network`.
    pub fn new(mnemonic: &Mnemonic, passphrase: &str, network: Network) -> Result<Self, KeyError> {
        let seed = mnemonic.seed(passphrase);
        let mut master =
            Xpriv::new_master(network.to_bitcoin(), &*seed).map_err(KeyError::Derivation)?;
        let mut secp = Secp256k1::new();
        let mut blind = zeroize::Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut *blind);
        // Context randomization: a side-channel defence for signing, seeded from the OS.
        secp.seeded_randomize(&blind);
        let account = |a: Account| -> Result<Xpriv, KeyError> {
            let path = DerivationPath::from(vec![
                hardened(86)?,
                hardened(network.coin_type())?,
                hardened(a.number())?,
            ]);
            master
                .derive_priv(&secp, &path)
                .map_err(KeyError::Derivation)
        };
        let (payment, runes) = (account(Account::Payment), account(Account::Runes));
        master.private_key.non_secure_erase();
        Ok(Keychain {
            network,
            secp,
            accounts: [payment?, runes?],
        })
    }

    fn account(&self, account: Account) -> &Xpriv {
        match account {
            Account::Payment => &self.accounts[0],
            Account::Runes => &self.accounts[1],
        }
    }

    /// The network its addresses are for.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The secp256k1 context (shared with signing).
    pub fn secp(&self) -> &Secp256k1<All> {
        &self.secp
    }

    /// The account's extended public key (`m/86'/coin'/account'`), for watching addresses.
    pub fn account_xpub(&self, account: Account) -> Result<Xpub, KeyError> {
        Ok(Xpub::from_priv(&self.secp, self.account(account)))
    }

    /// The address at `path`.
    pub fn derive(&self, path: KeyPath) -> Result<Derived, KeyError> {
        let keypair = self.keypair(path)?;
        let (internal_key, _) = keypair.x_only_public_key();
        let (output_key, _) = internal_key.tap_tweak(&self.secp, None);
        let address = Address::p2tr_tweaked(output_key, self.network.to_bitcoin());
        Ok(Derived {
            path,
            internal_key,
            output_key,
            script_pubkey: address.script_pubkey(),
            address,
        })
    }

    /// The untweaked key pair at `path` (signing tweaks it, per BIP86).
    pub(crate) fn keypair(&self, path: KeyPath) -> Result<Keypair, KeyError> {
        let below = DerivationPath::from(vec![normal(path.chain.number())?, normal(path.index)?]);
        let xpriv = self
            .account(path.account)
            .derive_priv(&self.secp, &below)
            .map_err(KeyError::Derivation)?;
        let keypair = xpriv.to_keypair(&self.secp);
        Ok(keypair)
    }
}

impl Drop for Keychain {
    fn drop(&mut self) {
        for a in &mut self.accounts {
            a.private_key.non_secure_erase();
        }
    }
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keychain({}, keys hidden)", self.network)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The regtest keychain of the "legal winner … yellow" BIP39 vector, for other modules' tests.
    pub(crate) fn regtest_keys() -> Keychain {
        let m = Mnemonic::parse(
            "legal winner thank year wave sausage worth useful legal winner thank yellow",
        )
        .unwrap();
        Keychain::new(&m, "", Network::Regtest).unwrap()
    }

    const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    /// BIP86 test vectors (bitcoin/bips bip-0086.mediawiki, "Test vectors"): path, internal key,
    /// output key, scriptPubKey, address; mnemonic "abandon … about", no passphrase, mainnet.
    const BIP86: &[(KeyPath, &str, &str, &str, &str)] = &[
        (
            KeyPath {
                account: Account::Payment,
                chain: Chain::External,
                index: 0,
            },
            "cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115",
            "a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c",
            "5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c",
            "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
        ),
        (
            KeyPath {
                account: Account::Payment,
                chain: Chain::External,
                index: 1,
            },
            "83dfe85a3151d2517290da461fe2815591ef69f2b18a2ce63f01697a8b313145",
            "a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb",
            "5120a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb",
            "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh",
        ),
        (
            KeyPath {
                account: Account::Payment,
                chain: Chain::Internal,
                index: 0,
            },
            "399f1b2f4393f29a18c937859c5dd8a77350103157eb880f02e8c08214277cef",
            "882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc",
            "5120882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc",
            "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7",
        ),
    ];

    /// BIP86 "Account 0, root = m/86'/0'/0'" xpub.
    const BIP86_ACCOUNT0_XPUB: &str = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ";

    #[test]
    fn bip86_vectors() {
        let m = Mnemonic::parse(ABANDON).unwrap();
        let keys = Keychain::new(&m, "", Network::Mainnet).unwrap();
        for (path, internal, output, spk, address) in BIP86 {
            let d = keys.derive(*path).unwrap();
            assert_eq!(d.internal_key.to_string(), *internal, "{path:?}");
            assert_eq!(d.output_key.to_x_only_public_key().to_string(), *output);
            assert_eq!(hex::encode(d.script_pubkey.as_bytes()), *spk);
            assert_eq!(d.address.to_string(), *address);
        }
        assert_eq!(
            keys.account_xpub(Account::Payment).unwrap().to_string(),
            BIP86_ACCOUNT0_XPUB
        );
    }

    #[test]
    fn paths_follow_the_network_and_the_account() {
        let p = KeyPath::change(Account::Runes, 7);
        assert_eq!(
            p.derivation_path(Network::Mainnet).unwrap().to_string(),
            "86'/0'/1'/1/7"
        );
        assert_eq!(
            p.derivation_path(Network::Regtest).unwrap().to_string(),
            "86'/1'/1'/1/7"
        );
        assert!(KeyPath::receive(Account::Payment, 1 << 31)
            .derivation_path(Network::Regtest)
            .is_err());
    }

    #[test]
    fn regtest_addresses_are_bcrt_and_accounts_differ() {
        let m = Mnemonic::parse(ABANDON).unwrap();
        let keys = Keychain::new(&m, "", Network::Regtest).unwrap();
        let pay = keys.derive(KeyPath::receive(Account::Payment, 0)).unwrap();
        let rune = keys.derive(KeyPath::receive(Account::Runes, 0)).unwrap();
        assert!(pay.address.to_string().starts_with("bcrt1p"));
        assert_ne!(pay.address, rune.address);
        let main = Keychain::new(&m, "", Network::Mainnet).unwrap();
        assert_ne!(
            main.derive(KeyPath::receive(Account::Payment, 0))
                .unwrap()
                .output_key,
            pay.output_key,
            "coin type 1 on test networks"
        );
    }

    #[test]
    fn a_passphrase_gives_another_wallet() {
        let m = Mnemonic::parse(ABANDON).unwrap();
        let a = Keychain::new(&m, "", Network::Regtest).unwrap();
        let b = Keychain::new(&m, "TREZOR", Network::Regtest).unwrap();
        let path = KeyPath::receive(Account::Payment, 0);
        assert_ne!(
            a.derive(path).unwrap().address,
            b.derive(path).unwrap().address
        );
    }
}
