//! Locking this browser's keys at rest with the wallet's password: the identity key and a relay
//! shared key move from the clear into records sealed under a new data key (itself wrapped
//! under the password) in one IndexedDB transaction; a visit then starts with the password;
//! removing the lock moves them back. The wallet's mnemonic is sealed under the same password
//! already, so one password guards every key this browser keeps.

use std::cell::RefCell;
use std::rc::Rc;

use darkswap_net::libp2p::identity::Keypair;
use darkswap_net::libp2p::PeerId;
use darkswap_wallet::keystore::{self, OpenError};
use futures::channel::oneshot;

use crate::credentials::{self, CredentialError};
use crate::identity::{self, IdentityError, Loaded};
use crate::storage::{replace, Change, StorageError};
use crate::vault::{self, VaultError, STORE};

/// Why the keys could not be locked, unlocked, or the lock removed.
#[derive(Debug, thiserror::Error)]
pub enum AtRestError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the stored wallet is unreadable: {0}")]
    Wallet(OpenError),
    #[error("cannot read the stored wallet: {0}")]
    WalletStorage(String),
    #[error("create a wallet first: its password locks these keys")]
    NoWallet,
    #[error("the keys here are locked already")]
    AlreadyLocked,
}

/// The identity handed to the waiting start-up, and whether it is still sealed at rest.
pub type Unlocked = (Keypair, bool);

thread_local! {
    /// The start-up, waiting for the trader to unlock.
    static WAITING: RefCell<Option<oneshot::Sender<Unlocked>>> = const { RefCell::new(None) };
}

/// Waits until the trader unlocks the keys (the start-up of a page whose keys are locked).
pub async fn wait_unlocked() -> Option<Unlocked> {
    let (tx, rx) = oneshot::channel();
    WAITING.with(|w| *w.borrow_mut() = Some(tx));
    rx.await.ok()
}

fn hand_over(unlocked: Unlocked) {
    if let Some(waiting) = WAITING.with(|w| w.borrow_mut().take()) {
        let _ = waiting.send(unlocked);
    }
}

/// Unlocks at start-up with the password, and hands the identity to the waiting start-up. If
/// another tab removed the lock meanwhile, the identity is read again as it is now stored.
pub async fn unlock(password: &str) -> Result<PeerId, AtRestError> {
    let key = match vault::unwrap_stored(password).await {
        Ok(key) => key,
        Err(VaultError::NotLocked) => match identity::load_or_create().await? {
            Loaded::Ready(keypair) => {
                let me = keypair.public().to_peer_id();
                hand_over((*keypair, false));
                return Ok(me);
            }
            Loaded::Locked => return Err(VaultError::NotLocked.into()),
        },
        Err(e) => return Err(e.into()),
    };
    let keypair = identity::open_sealed(&key).await?;
    let me = keypair.public().to_peer_id();
    vault::set_current(Some(Rc::new(key)));
    hand_over((keypair, true));
    Ok(me)
}

/// Locks the keys of `me` with `password`, which must be the wallet's (it must open the stored
/// wallet: one password for every key here).
pub async fn lock(me: &PeerId, password: &str) -> Result<(), AtRestError> {
    if vault::locked_at_rest().await? {
        return Err(AtRestError::AlreadyLocked);
    }
    let wallet = crate::wallet::load_sealed()
        .await
        .map_err(AtRestError::WalletStorage)?
        .ok_or(AtRestError::NoWallet)?;
    let network = keystore::inspect(&wallet)
        .map_err(AtRestError::Wallet)?
        .network;
    vault::throttled(|| keystore::open(&wallet, password, network).map(drop)).await?;
    let plain = identity::plain_bytes().await?;
    let (key, wrapped) = vault::new_wrapped(password)?;
    // Only if no other tab locked them or changed the identity meanwhile.
    let change = Change {
        expect: vec![
            (vault::WRAPPED.to_string(), false),
            (identity::SEALED.to_string(), false),
            (identity::PLAIN.to_string(), true),
        ],
        puts: vec![wrapped, identity::sealed_record(&key, &plain)?],
        deletes: vec![identity::PLAIN.to_string()],
    }
    .and(credentials::moved(me, Some(&key)).await?);
    replace(STORE, &change).await?;
    vault::set_current(Some(Rc::new(key)));
    Ok(())
}

/// Removes the lock: the password must unwrap the stored data key; the keys go back into the
/// clear.
pub async fn remove(me: &PeerId, password: &str) -> Result<(), AtRestError> {
    let key = vault::unwrap_stored(password).await?;
    let keypair = identity::open_sealed(&key).await?;
    vault::set_current(Some(Rc::new(key)));
    let change = Change {
        expect: vec![
            (vault::WRAPPED.to_string(), true),
            (identity::PLAIN.to_string(), false),
        ],
        puts: vec![identity::plain_record(&keypair)?],
        deletes: vec![vault::WRAPPED.to_string(), identity::SEALED.to_string()],
    }
    .and(credentials::moved(me, None).await?);
    replace(STORE, &change).await?;
    vault::set_current(None);
    Ok(())
}
