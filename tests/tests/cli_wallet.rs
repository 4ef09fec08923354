//! `darkswap wallet` end to end: a real regtest bitcoind and ord behind a real relay that names
//! them in relay-info (its gateway at /esplora, ord's JSON API, the faucet). Two wallets created
//! by the CLI; the faucet pays one; it sends to the other; both balances and histories follow.
//! Wrong passwords are refused and, past the free tries, throttled across runs; a mainnet
//! address is refused.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Result};
use darkswap_tests::cli_bin;
use darkswap_tests::regtest::Regtest;
use darkswap_wallet::mnemonic::Mnemonic;

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

struct Cli<'a> {
    relay: &'a str,
    file: std::path::PathBuf,
}

impl Cli<'_> {
    fn run_with(
        &self,
        password: &str,
        stdin: &str,
        args: &[&str],
    ) -> Result<(bool, String, String)> {
        let mut child = Command::new(cli_bin())
            .arg("wallet")
            .arg("--file")
            .arg(&self.file)
            .args(["--relay-http", self.relay])
            .args(args)
            .env("DARKSWAP_WALLET_PASSWORD", password)
            .env_remove("DARKSWAP_RELAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .map(|mut s| s.write_all(stdin.as_bytes()));
        let out = child.wait_with_output()?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        ))
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let (ok, out, err) = self.run_with("correct horse battery", "", args)?;
        if !ok {
            bail!("darkswap wallet {args:?}: {err}");
        }
        Ok(out)
    }
}

fn sats_confirmed(balance: &str) -> u64 {
    balance
        .lines()
        .find_map(|l| l.strip_prefix("bitcoin: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bitcoin line in {balance}"))
}

#[test]
fn two_cli_wallets_trade_coins_through_a_relay_that_names_the_chain() -> Result<()> {
    let Regtest {
        node,
        ord,
        relay,
        dir,
    } = Regtest::start()?;
    let alice = Cli {
        relay: &relay.http,
        file: dir.path().join("alice.json"),
    };
    let bob = Cli {
        relay: &relay.http,
        file: dir.path().join("bob.json"),
    };
    let created = alice.ok(&["create"])?;
    assert!(created.contains("mnemonic (shown once"), "{created}");
    assert_eq!(
        created
            .lines()
            .next()
            .unwrap()
            .split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .count(),
        12
    );
    bob.ok(&["create", "--words", "24"])?;
    // At rest: neither the phrase nor its entropy (the secret itself) is in the file, as text
    // or inside the sealed record. (Single words are no test: "network" and "unlock" are BIP39
    // words and the file's own keys, and "face" or "feed" can turn up in any hex.)
    let file = std::fs::read_to_string(&alice.file)?;
    let words = created.lines().next().unwrap().split(": ").nth(1).unwrap();
    let entropy = Mnemonic::parse(words)?.entropy();
    let record: serde_json::Value = serde_json::from_str(&file)?;
    let sealed = hex_decode(record["sealed"].as_str().expect("a sealed record"));
    assert!(!file.contains(words), "the phrase is not in the file");
    assert!(
        !file.contains(&hex_encode(&entropy)),
        "nor its entropy in hex"
    );
    assert!(
        !sealed.windows(entropy.len()).any(|w| w == &entropy[..]),
        "nor its entropy in the sealed bytes"
    );
    assert!(alice
        .run_with("x", "", &["create"])?
        .2
        .contains("never overwritten"));

    alice.ok(&["faucet"])?;
    ord.synced_to(node.height()?)?;
    let before = alice.ok(&["balance"])?;
    assert_eq!(sats_confirmed(&before), 2 * 50 * 100_000_000, "{before}");

    let bob_addr = bob.ok(&["address"])?.trim().to_string();
    assert!(bob_addr.starts_with("bcrt1p"), "{bob_addr}");
    let sent = alice.ok(&["send", &bob_addr, "100000000", "--fee-rate", "2"])?;
    assert!(sent.starts_with("sent "), "{sent}");
    node.mine_to(1, &bob_addr)?;
    ord.synced_to(node.height()?)?;
    let bob_balance = bob.ok(&["balance"])?;
    assert_eq!(sats_confirmed(&bob_balance), 100_000_000, "{bob_balance}");
    let after = alice.ok(&["balance"])?;
    let fee: u64 = sent
        .split("fee ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    // The block that confirmed the send also matured alice's third coinbase (50 BTC).
    assert_eq!(
        sats_confirmed(&after),
        sats_confirmed(&before) - 100_000_000 - fee + 50 * 100_000_000
    );
    // Bob's history: the send (1 confirmation, +1 BTC) and the block's coinbase he mined.
    let history = bob.ok(&["history"])?;
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 2, "{history}");
    assert!(
        lines.iter().any(|l| l.ends_with(" 1 conf +100000000 sat")),
        "{history}"
    );
    // Alice's: newest first, the send with what it cost her and its fee, then 101 coinbases.
    let history = alice.ok(&["history"])?;
    let first = history.lines().next().unwrap_or_default();
    assert!(
        first.ends_with(&format!(" 1 conf -{} sat fee {fee} sat", 100_000_000 + fee)),
        "{first}"
    );
    assert_eq!(history.lines().count(), 102);

    // Test runes: the relay's faucet etches its rune on the first call and sends 1,000.00 to
    // bob's rune address; ord (the real indexer) agrees. Alice gets hers from the faucet's rune
    // change; bob sends 250.00 onwards to her.
    let gift = bob.ok(&["faucet", "--runes"])?;
    assert!(
        gift.starts_with("the faucet sent 1000.00 of rune "),
        "{gift}"
    );
    let rune = gift
        .split("of rune ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    alice.ok(&["faucet", "--runes"])?;
    ord.synced_to(node.height()?)?;
    let runes_of = |cli: &Cli, confirmed: u128| -> Result<()> {
        let b = cli.ok(&["balance"])?;
        anyhow::ensure!(
            b.contains(&format!("rune {rune}: {confirmed} confirmed")),
            "{b}"
        );
        Ok(())
    };
    runes_of(&bob, 100_000)?;
    runes_of(&alice, 100_000)?;
    let alice_runes = alice.ok(&["address", "--runes"])?.trim().to_string();
    let sent = bob.ok(&[
        "send-runes",
        &rune,
        "25000",
        &alice_runes,
        "--fee-rate",
        "2",
    ])?;
    assert!(sent.starts_with("sent "), "{sent}");
    node.mine_to(1, &bob_addr)?;
    ord.synced_to(node.height()?)?;
    runes_of(&bob, 75_000)?;
    runes_of(&alice, 125_000)?;

    // A mainnet address, a wrong password, then the throttle.
    let mainnet = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr";
    let (ok, _, err) = alice.run_with("correct horse battery", "", &["send", mainnet, "1000"])?;
    assert!(!ok && err.contains("not for regtest"), "{err}");
    for _ in 0..3 {
        let (ok, _, err) = alice.run_with("wrong horse", "", &["balance"])?;
        assert!(!ok && err.contains("wrong password"), "{err}");
    }
    assert_file_holds_failures(&alice.file, 3)?;
    // Ten wrong passwords just now (as a guesser would leave the file): the right password
    // waits its turn too (2^7 s after the tenth), and no key is derived meanwhile.
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&alice.file)?)?;
    v["unlock_failures"] = 10.into();
    v["last_failure_ms"] = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64)
        .into();
    std::fs::write(&alice.file, v.to_string())?;
    let (ok, _, err) = alice.run_with("correct horse battery", "", &["balance"])?;
    assert!(!ok && err.contains("too many wrong passwords"), "{err}");
    assert_file_holds_failures(&alice.file, 10)?;
    // A right password after the wait resets the count (shown with the wait over).
    v["last_failure_ms"] = 0.into();
    std::fs::write(&alice.file, v.to_string())?;
    alice.ok(&["balance"])?;
    assert_file_holds_failures(&alice.file, 0)?;

    // A relay that does not answer: three tries (0.5 s, then 1 s apart), then a clear error.
    let gone = format!("http://127.0.0.1:{}", darkswap_tests::free_tcp_port());
    let nobody = Cli {
        relay: &gone,
        file: alice.file.clone(),
    };
    let started = std::time::Instant::now();
    let (ok, _, err) = nobody.run_with("correct horse battery", "", &["balance"])?;
    assert!(
        !ok && err.contains("tried 3 time(s)") && err.contains("cannot reach"),
        "{err}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(1_500));
    Ok(())
}

fn assert_file_holds_failures(path: &Path, n: u64) -> Result<()> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    assert_eq!(v["unlock_failures"].as_u64(), Some(n));
    Ok(())
}
