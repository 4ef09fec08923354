//! A trade in words a trader reads: what we do in it and where it stands. Used by the trades
//! list and by the alerts, so both say the same thing.

use darkswap_net::negotiation::TakeError;
use darkswap_net::{Trade, TradeRole, TradeState};
use darkswap_orderbook::decimal::{self, Zeros};
use darkswap_orderbook::{quote_amount, Asset, BtcUnit, Pair, PairUnits, Price, Side, Units};
use darkswap_settle::driver::View;
use darkswap_settle::{Role, Step};
use darkswap_wallet::swap::Side as SwapSide;

/// An amount of `asset` given in its smallest unit, as on the wire, written in its display
/// unit: BTC in the trader's choice with the other beside it ("200 sat (0.000002 BTC)",
/// "0.000002 BTC (200 sat)"), a rune in its divisibility when known ("400.00 DARK•SWAP") and
/// otherwise in its smallest units ("400 RUNE:X").
pub fn in_units(units: &Units, asset: &Asset, smallest: u64) -> String {
    let n = u128::from(smallest);
    match (asset, units.btc()) {
        (Asset::Btc, BtcUnit::Sat) => format!("{smallest} sat ({} BTC)", btc(n)),
        (Asset::Btc, BtcUnit::Btc) => format!("{} BTC ({smallest} sat)", btc(n)),
        (other, _) => units.asset(other).write(n),
    }
}

/// Satoshis as an exact decimal number of BTC.
fn btc(sats: u128) -> String {
    decimal::format(sats, 8, Zeros::Trim)
}

/// "buy 400 RUNE:X for 200 sat (0.000002 BTC)": what *we* do in the trade.
pub fn describe(units: &Units, t: &Trade) -> String {
    let we_buy = (t.role == TradeRole::Taker) == (t.maker_side == Side::Sell);
    let quote = quote_amount(t.amount, t.price).unwrap_or(0);
    format!(
        "{} {} for {}",
        if we_buy { "buy" } else { "sell" },
        in_units(units, &t.pair.base, t.amount),
        in_units(units, &t.pair.quote, quote)
    )
}

/// A price on `pair` with its unit: "0.5 sat per RUNE:X unit".
pub fn price_text(units: &Units, pair: &Pair, price: Price) -> String {
    let u = units.pair(pair);
    format!("{} {}", u.price(price), u.price_label())
}

/// Where the trade stands, and for a live one what happens next (on `pair`, which may be one
/// that cannot settle on Bitcoin at all). A maker's refusal is the maker's own text: it is
/// shown as theirs, cleaned and cut ([`their_words`]).
pub fn state_text(state: &TradeState, pair: &Pair) -> String {
    match state {
        TradeState::Requested => "requested — waiting for the maker".into(),
        TradeState::Accepted => "accepted — signing".into(),
        TradeState::Agreed if !pair.settles_on_bitcoin() => {
            "agreed — this pair cannot settle on Bitcoin: nothing moves".into()
        }
        TradeState::Agreed => "agreed — awaiting settlement".into(),
        TradeState::Rejected { reason } => format!(
            "rejected by the maker, who said: \"{}\". Nothing was agreed: take another order or try again.",
            their_words(reason)
        ),
        TradeState::Aborted { reason } => format!("aborted: {}", their_words(reason)),
    }
}

/// A settlement's reason without the step word the machine put in front of it (the words
/// above say the step once).
fn bare(reason: &str) -> &str {
    ["aborted: ", "not settled: ", "cancelled: "]
        .iter()
        .find_map(|p| reason.strip_prefix(p))
        .unwrap_or(reason)
}

/// Most characters of another trader's text shown (the wire allows 200 bytes of it).
const THEIR_WORDS_CHARS: usize = 200;

/// Characters dropped from another trader's text: the bidi controls and isolates, zero-width
/// and other invisible format characters, the deprecated format characters, the interlinear
/// annotation marks and the tag characters (all of which can hide or reorder what is read).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
}

/// Text that came from another trader (a refusal, an abort reason), made safe to show:
/// invisible and control characters dropped, double quotes made single (so the text cannot
/// close the quote the page puts it in and speak as the page), whitespace runs made one space,
/// and cut to [`THEIR_WORDS_CHARS`] characters (then "…").
pub fn their_words(text: &str) -> String {
    let mut kept: Vec<char> = Vec::new();
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !kept.is_empty();
            continue;
        }
        if invisible(c) {
            continue;
        }
        if space {
            kept.push(' ');
            space = false;
        }
        kept.push(match c {
            '"' | '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{ff02}' => '\'',
            other => other,
        });
    }
    if kept.len() > THEIR_WORDS_CHARS {
        kept.truncate(THEIR_WORDS_CHARS);
        kept.push('…');
    }
    kept.into_iter().collect()
}

/// What happened to one of our orders that left the book, as a sentence with what to do next
/// (the node's reason is a short label the CLI prints as it is).
pub fn withdrawn(id8: &str, reason: &str) -> String {
    match reason {
        "filled" => format!("order {id8} was filled completely: its trade is under Trades."),
        "expired" => format!("order {id8} expired and left every book: place it again to keep trading."),
        "this client stopped announcing it" => format!(
            "order {id8} left the book: this page stopped announcing it (asleep or offline). Place it again."
        ),
        r if r.starts_with("could not reach the relay's order gossip") => format!(
            "order {id8} was not published: the relay's order network did not take it in time. Check that the relay shows online, then place it again."
        ),
        r if r.contains("cannot be announced again") => format!(
            "order {id8}: what a trade left of it expires too soon to announce again, so it left the book. Place a new order for the rest."
        ),
        r if r.starts_with("the relay refused it: ") => format!(
            "order {id8} withdrawn: {r}. Change the order, or ask the relay's operator."
        ),
        other => format!("order {id8} withdrawn: {other}"),
    }
}

/// A take refused before it was sent, in the pair's units (`pair`: the pair shown, where the
/// take was made).
pub fn take_refused(units: &Units, pair: Option<&Pair>, e: &TakeError) -> String {
    let amount = |n: u64| match pair {
        Some(p) => units.pair(p).amount(n),
        None => n.to_string(),
    };
    match e {
        TakeError::Amount { available: 0 } => {
            "Nothing of that order is free to take now (others are taking it): try again in a minute.".into()
        }
        TakeError::Amount { available } => format!(
            "You can take at most {} of this order now: lower the amount to take and press it again.",
            amount(*available)
        ),
        TakeError::BelowMinimum { min } => format!(
            "This order needs at least {} per take: raise the amount to take.",
            amount(*min)
        ),
        TakeError::TooManyOpen => {
            "You already have as many takes waiting for answers as the page allows: wait for one to finish, then take again.".into()
        }
        other => format!("{other}."),
    }
}

/// Where a trade's settlement on Bitcoin stands, in words (`we_make`: the order was ours, so we
/// sign last and broadcast).
pub fn settle_text(v: &View) -> String {
    let reason = their_words(v.reason.as_deref().unwrap_or(""));
    let (seen, needed) = v.confirmations;
    let we_make = v.deal.is_some_and(|d| d.role == Role::Maker);
    match v.step {
        None if reason.starts_with("not settled: ") => {
            format!("not settled, nothing moved: {}", bare(&reason))
        }
        None => format!("settling: {reason}"),
        Some(Step::Offered) => "settling: offers exchanged; waiting for the other side's".into(),
        Some(Step::Checking) => "settling: checking the other side's outputs on the chain".into(),
        Some(Step::Checked) if we_make => {
            "settling: swap built and checked; waiting for the taker's signatures".into()
        }
        Some(Step::Checked) => "settling: swap built and checked; signing".into(),
        Some(Step::Signed) if v.cancel_offered => format!("signed; {reason}"),
        Some(Step::Signed) => "signed; waiting for the maker to complete and broadcast".into(),
        Some(Step::Broadcast) => format!("broadcast: {seen} of {needed} confirmations"),
        Some(Step::Settled) => format!("settled: the assets moved ({seen} confirmations)"),
        Some(Step::Aborted) => format!("not settled, nothing moved: {}", bare(&reason)),
        Some(Step::Cancelled) => format!("cancelled: {}", bare(&reason)),
    }
}

/// What we give and get in the swap (`rune` is the pair's rune), once its fee is known: the
/// seller gets the price less its share of the fee; the buyer pays the price and its share,
/// and its runes arrive on an output of its own carrying 546 sat.
pub fn gave_got(units: &Units, v: &View, rune: &Asset) -> Option<String> {
    let u = units;
    let deal = v.deal?;
    let (_, ours) = v.fee?;
    let amount = u64::try_from(deal.terms.units).ok()?;
    let price = deal.terms.price.to_sat();
    let done = v.step == Some(Step::Settled);
    let (give, get) = if done {
        ("gave", "got")
    } else {
        ("give", "get")
    };
    Some(match deal.side {
        SwapSide::Seller => format!(
            "you {give} {} and {get} {} (the price less your {} share of the fee)",
            in_units(u, rune, amount),
            in_units(u, &Asset::Btc, price.saturating_sub(ours.to_sat())),
            in_units(u, &Asset::Btc, ours.to_sat()),
        ),
        SwapSide::Buyer => format!(
            "you {give} {} (the price and your {} share of the fee) and {get} {}",
            in_units(u, &Asset::Btc, price.saturating_add(ours.to_sat())),
            in_units(u, &Asset::Btc, ours.to_sat()),
            in_units(u, rune, amount),
        ),
    })
}

/// What an order would do, in words, as the trader types it: "You sell 1000 RUNE:X and receive
/// 500 sat (0.000005 BTC)". `None` until amount and price both read as positive numbers in the
/// pair's display units.
pub fn order_total(
    units: &Units,
    pair: &Pair,
    side: Side,
    amount: &str,
    price: &str,
) -> Option<String> {
    let p = units.pair(pair);
    let base = p.base.read(amount).ok().filter(|a| *a > 0)?;
    let price = p.read_price(price).ok()?;
    let Some(total) = quote_amount(base, price) else {
        return Some(format!("the total is too large to trade in {}", pair.quote));
    };
    if total == 0 {
        return Some(format!(
            "{} at {} comes to less than one unit of {}: raise the amount or the price",
            in_units(units, &pair.base, base),
            p.price(price),
            pair.quote
        ));
    }
    let (base, quote) = (
        in_units(units, &pair.base, base),
        in_units(units, &pair.quote, total),
    );
    Some(match side {
        Side::Sell => format!("You sell {base} and receive {quote}"),
        Side::Buy => format!("You buy {base} and pay {quote}"),
    })
}

/// The middle of the best bid and the best ask in `units`, exactly (it can need one decimal
/// more than a price has).
pub fn mid_price(units: &PairUnits, bid: Price, ask: Price) -> String {
    // In tenths of a price's last place: (bid + ask) / 2 * 10.
    let tenths = (u128::from(bid.0) + u128::from(ask.0)) * 5;
    let one = units.price_places() + 1;
    decimal::format(tenths, one, Zeros::Trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sats() -> Units {
        Units::default().with_btc(BtcUnit::Sat)
    }

    fn pair() -> Pair {
        Pair::parse("RUNE:DOG/BTC").unwrap()
    }

    #[test]
    fn an_agreement_on_a_pair_that_cannot_settle_says_nothing_moves() {
        assert_eq!(
            state_text(&TradeState::Agreed, &pair()),
            "agreed — awaiting settlement"
        );
        assert_eq!(
            state_text(&TradeState::Agreed, &Pair::parse("BTC/USDT").unwrap()),
            "agreed — this pair cannot settle on Bitcoin: nothing moves"
        );
    }

    fn view(side: SwapSide, step: Option<Step>) -> View {
        use bitcoin::Amount;
        use darkswap_settle::Deal;
        use darkswap_wallet::swap::Terms;
        View {
            trade_id: [1; 16],
            deal: Some(Deal {
                trade_id: [1; 16],
                role: Role::Maker,
                side,
                terms: Terms {
                    rune: "5:1".parse().unwrap(),
                    units: 40_000,
                    price: Amount::from_sat(200_000),
                    fee_rate: darkswap_wallet::FeeRate::sat_per_vb(2).unwrap(),
                },
            }),
            step,
            reason: Some("the other side did not answer within 120 s".into()),
            txid: None,
            confirmations: (1, 1),
            fee: Some((Amount::from_sat(700), Amount::from_sat(300))),
            cancel_offered: false,
            cancel_fee: None,
        }
    }

    #[test]
    fn a_settlement_reads_as_where_it_stands_and_what_moves() {
        let rune = Asset::parse("RUNE:DOG").unwrap();
        let seller = view(SwapSide::Seller, Some(Step::Settled));
        assert_eq!(
            settle_text(&seller),
            "settled: the assets moved (1 confirmations)"
        );
        assert_eq!(
            gave_got(&sats(), &seller, &rune).unwrap(),
            "you gave 40000 RUNE:DOG and got 199700 sat (0.001997 BTC) (the price less your 300 sat (0.000003 BTC) share of the fee)"
        );
        let buyer = view(SwapSide::Buyer, Some(Step::Broadcast));
        assert_eq!(settle_text(&buyer), "broadcast: 1 of 1 confirmations");
        assert!(gave_got(&sats(), &buyer, &rune)
            .unwrap()
            .starts_with("you give 200300 sat (0.002003 BTC) (the price and your 300 sat"));
        let aborted = view(SwapSide::Buyer, Some(Step::Aborted));
        assert_eq!(
            settle_text(&aborted),
            "not settled, nothing moved: the other side did not answer within 120 s"
        );
        let waiting = View {
            fee: None,
            ..view(SwapSide::Buyer, Some(Step::Checked))
        };
        assert_eq!(
            settle_text(&waiting),
            "settling: swap built and checked; waiting for the taker's signatures"
        );
        assert_eq!(gave_got(&sats(), &waiting, &rune), None, "no fee known yet");
    }

    #[test]
    fn the_order_total_reads_as_the_trade() {
        assert_eq!(
            order_total(&sats(), &pair(), Side::Sell, "1000", "0.5").as_deref(),
            Some("You sell 1000 RUNE:DOG and receive 500 sat (0.000005 BTC)")
        );
        assert_eq!(
            order_total(&sats(), &pair(), Side::Buy, " 40000 ", "0.000025").as_deref(),
            Some("You buy 40000 RUNE:DOG and pay 1 sat (0.00000001 BTC)")
        );
        assert!(order_total(&sats(), &pair(), Side::Buy, "3", "0.1")
            .unwrap()
            .contains("less than one unit of BTC"));
        assert!(order_total(
            &sats(),
            &pair(),
            Side::Buy,
            u64::MAX.to_string().as_str(),
            "100"
        )
        .unwrap()
        .contains("too large"));
        for (amount, price) in [
            ("", "1"),
            ("0", "1"),
            ("1", ""),
            ("1", "0"),
            ("x", "1"),
            ("1", "1e3"),
        ] {
            assert_eq!(
                order_total(&sats(), &pair(), Side::Sell, amount, price),
                None,
                "{amount} @ {price}"
            );
        }
    }

    #[test]
    fn btc_amounts_say_satoshis_and_their_value_in_btc() {
        assert_eq!(in_units(&sats(), &Asset::Btc, 1), "1 sat (0.00000001 BTC)");
        assert_eq!(
            in_units(&sats(), &Asset::Btc, 150_000_000),
            "150000000 sat (1.5 BTC)"
        );
        assert_eq!(in_units(&sats(), &Asset::Btc, 0), "0 sat (0 BTC)");
        let rune = Asset::parse("RUNE:DOG").unwrap();
        assert_eq!(in_units(&sats(), &rune, 7), "7 RUNE:DOG");
    }

    #[test]
    fn another_traders_words_are_cleaned_cut_and_shown_as_theirs() {
        assert_eq!(their_words("  only\n 4000\tleft "), "only 4000 left");
        assert_eq!(their_words("a\u{202e}b\u{200b}c\u{7}d"), "abcd");
        let long = "x".repeat(500);
        assert_eq!(their_words(&long).chars().count(), THEIR_WORDS_CHARS + 1);
        // Spaces do not let it past the bound.
        let spaced = format!("{} {}", "a".repeat(THEIR_WORDS_CHARS - 1), "b".repeat(80));
        assert_eq!(their_words(&spaced).chars().count(), THEIR_WORDS_CHARS + 1);
        // It cannot close the page's quote, nor hide behind tag or deprecated format marks.
        assert_eq!(
            their_words("ok\". The page: send \u{e0041}\u{206a}more"),
            "ok'. The page: send more"
        );
        let rejected = TradeState::Rejected {
            reason: "sold out\u{202e}".into(),
        };
        assert_eq!(
            state_text(&rejected, &pair()),
            "rejected by the maker, who said: \"sold out\". Nothing was agreed: take another order or try again."
        );
    }

    #[test]
    fn refusals_read_as_sentences_in_the_pairs_units() {
        let mut units = sats();
        assert!(units.learn_rune("DOG", 2));
        assert_eq!(
            take_refused(&units, Some(&pair()), &TakeError::Amount { available: 150 }),
            "You can take at most 1.50 DOG of this order now: lower the amount to take and press it again."
        );
        assert_eq!(
            take_refused(
                &units,
                Some(&pair()),
                &TakeError::BelowMinimum { min: 5000 }
            ),
            "This order needs at least 50.00 DOG per take: raise the amount to take."
        );
        assert_eq!(
            withdrawn("1a2b3c4d", "filled"),
            "order 1a2b3c4d was filled completely: its trade is under Trades."
        );
        assert!(withdrawn("1a2b3c4d", "expired").contains("place it again"));
    }

    #[test]
    fn the_mid_price_is_exact() {
        let u = sats().pair(&pair());
        assert_eq!(mid_price(&u, Price(50_000_000), Price(60_000_000)), "0.55");
        assert_eq!(mid_price(&u, Price(1), Price(2)), "0.000000015");
        assert_eq!(mid_price(&u, Price(100_000_000), Price(300_000_000)), "2");
        assert_eq!(
            mid_price(&u, Price(u64::MAX), Price(u64::MAX)),
            Price(u64::MAX).to_string()
        );
        // In BTC per rune of divisibility 2: 0.55 sat per unit is 0.00000055 BTC per rune.
        let mut known = Units::default();
        assert!(known.learn_rune("DOG", 2));
        let u = known.pair(&pair());
        assert_eq!(
            mid_price(&u, Price(50_000_000), Price(60_000_000)),
            "0.00000055"
        );
    }

    #[test]
    fn in_btc_the_order_total_and_amounts_read_in_btc() {
        let mut units = Units::default();
        assert!(units.learn_rune("DOG", 2));
        // 1000.00 DOG at 0.000005 BTC per DOG.
        assert_eq!(
            order_total(&units, &pair(), Side::Sell, "1000", "0.000005").as_deref(),
            Some("You sell 1000.00 DOG and receive 0.005 BTC (500000 sat)")
        );
        let usdt = Pair::parse("BTC/USDT").unwrap();
        assert_eq!(
            order_total(&units, &usdt, Side::Sell, "0.5", "97000").as_deref(),
            Some("You sell 0.5 BTC (50000000 sat) and receive 48500 USDT")
        );
        assert_eq!(
            price_text(&units, &pair(), Price(50_000_000)),
            "0.0000005 BTC per DOG"
        );
    }
}
