//! Trades settled on Bitcoin by `darkswap market --wallet`, end to end: a real regtest bitcoind
//! and ord behind a real relay (its chain gateway, ord's API, the faucets), three CLI traders
//! on the relay's TCP address. The maker holds the relay faucet's rune (100,000 units) and sells
//! all of it at 5 sat a unit; the first taker takes 40,000, the second the 60,000 left once the
//! first swap confirmed. Each take carries the taker's offer; each side reads its wallet, looks
//! the other's outputs up (transaction, spend, ord's runes), builds the same swap, signs its own
//! inputs (the taker first), and the maker broadcasts through the gateway (Core checks every
//! input's script as it takes the transaction in). After one block both sides report the trade
//! settled; ord counts the fills on the takers' outputs and the rest on the maker's change; the
//! maker's order follows (60,000 left, then filled). A take made while the maker's runes are all
//! in an unconfirmed swap is agreed in the book but not settled, and both sides say why; a
//! restart of the maker resumes its stored settlements.

use anyhow::Result;
use darkswap_tests::market_cli::{
    faucet_rune, mine, runes_on, take, txid, wallet, wallet_file, Market,
};
use darkswap_tests::regtest::Regtest;

#[test]
fn cli_traders_settle_a_partly_filled_order_on_regtest_and_ord_agrees() -> Result<()> {
    let Regtest {
        node,
        ord,
        relay,
        dir,
    } = Regtest::start()?;
    for name in ["maker", "alice", "bob"] {
        wallet(&relay, &wallet_file(dir.path(), name), &["create"])?;
    }
    let (id, pair) = faucet_rune(&relay, &node, &ord, &wallet_file(dir.path(), "maker"))?;
    for name in ["alice", "bob"] {
        wallet(&relay, &wallet_file(dir.path(), name), &["faucet"])?;
    }
    ord.synced_to(node.height()?)?;

    let mut maker = Market::start("maker", &relay, dir.path(), &pair)?;
    let mut alice = Market::start("alice", &relay, dir.path(), &pair)?;
    let order = maker.make("sell 100000 5")?;

    let first = take(&mut alice, &order, 40_000)?;
    let maker_line = maker.step(&first, "broadcast")?;
    let alice_line = alice.step(&first, "broadcast")?;
    let swap = txid(&maker_line)?;
    assert_eq!(txid(&alice_line)?, swap, "both hold the same swap");
    maker.printed(|l| l.starts_with(&format!("reduced {order} 60000 left")))?;

    // While that swap is unconfirmed the maker's runes are all in it (ord indexes blocks only,
    // so its rune change cannot be offered yet): a second take is agreed in the book but not
    // settled, the maker tells the taker why, and the taker's outputs are free again.
    let mut bob = Market::start("bob", &relay, dir.path(), &pair)?;
    let early = take(&mut bob, &order, 10_000)?;
    let why = maker.step(&early, "aborted")?;
    assert!(why.contains("the wallet cannot fund this trade"), "{why}");
    let told = bob.step(&early, "aborted")?;
    assert!(told.contains("could not settle"), "{told}");
    mine(&node, &ord)?;
    let settled = maker.step(&first, "settled")?;
    assert!(settled.contains("conf=1/1"), "{settled}");
    alice.step(&first, "settled")?;
    assert_eq!(
        runes_on(&ord, &format!("{swap}:0"))?,
        40_000,
        "alice's fill"
    );
    assert_eq!(
        runes_on(&ord, &format!("{swap}:1"))?,
        60_000,
        "maker's change"
    );

    // The maker restarts: its settlements are read back from the file.
    drop(maker);
    let mut maker = Market::start("maker", &relay, dir.path(), &pair)?;
    maker.send("settlements")?;
    let listed = maker.wait(|l| l.starts_with(&format!("settle {first} ")))?;
    assert!(listed.contains(" settled "), "{listed}");
    maker.wait(|l| l == "end settlements=1")?;
    // Its order died with the first session (no keep-alive): it places the rest again.
    let order = maker.make("sell 60000 5")?;

    // The second taker takes what is left, from the maker's confirmed rune change.
    let second = take(&mut bob, &order, 60_000)?;
    let line = maker.step(&second, "broadcast")?;
    let swap2 = txid(&line)?;
    bob.step(&second, "broadcast")?;
    maker.printed(|l| l.starts_with(&format!("withdrawn {order} filled")))?;
    mine(&node, &ord)?;
    maker.step(&second, "settled")?;
    bob.step(&second, "settled")?;
    assert_eq!(runes_on(&ord, &format!("{swap2}:0"))?, 60_000, "bob's fill");
    let change: serde_json::Value = serde_json::from_str(&ord.get(&format!("/output/{swap}:1"))?)?;
    assert_eq!(
        change["spent"], true,
        "the second swap spent the maker's change"
    );

    // Both sides counted what happened; nothing was refused.
    let text = maker.metrics()?;
    assert!(
        text.contains("darkswap_client_settle_ended_total{step=\"settled\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("darkswap_client_settle_refused_total{"),
        "{text}"
    );
    let text = bob.metrics()?;
    assert!(text.contains("darkswap_client_settle_ended_total{step=\"settled\"} 1"));
    assert!(!maker.said("error take") && !bob.said("error take"));

    // Balances, by the wallets themselves.
    let balance = wallet(&relay, &wallet_file(dir.path(), "bob"), &["balance"])?;
    assert!(
        balance.contains(&format!("rune {id}: 60000 confirmed")),
        "bob holds 600.00 of the rune: {balance}"
    );
    let balance = wallet(&relay, &wallet_file(dir.path(), "alice"), &["balance"])?;
    assert!(
        balance.contains(&format!("rune {id}: 40000 confirmed")),
        "alice holds 400.00: {balance}"
    );
    Ok(())
}
