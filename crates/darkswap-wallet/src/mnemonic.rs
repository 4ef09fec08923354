//! The wallet's secret: a BIP39 mnemonic (English word list), created from the operating
//! system's randomness (the browser's `crypto.getRandomValues` in wasm32) or imported. Its
//! entropy, seed and words are handed out only in [`Zeroizing`] buffers, wiped when dropped, and
//! nothing here implements `Display` or a revealing `Debug`, so a mnemonic cannot end up in a
//! log by accident.

use std::fmt;

use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// How many words a new mnemonic has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordCount {
    /// 12 words, 128 bits of entropy.
    Twelve,
    /// 24 words, 256 bits of entropy.
    TwentyFour,
}

impl WordCount {
    fn entropy_bytes(self) -> usize {
        match self {
            WordCount::Twelve => 16,
            WordCount::TwentyFour => 32,
        }
    }
}

/// Why a typed-in mnemonic was refused (the words themselves are never repeated in the error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MnemonicError {
    /// Not 12, 15, 18, 21 or 24 words.
    #[error("a mnemonic has 12, 15, 18, 21 or 24 words; this one has {0}")]
    WordCount(usize),
    /// Word number `index` (from 1) is not in the BIP39 English list.
    #[error("word {index} is not in the BIP39 English word list")]
    UnknownWord {
        /// 1-based position of the word.
        index: usize,
    },
    /// The last word does not match the checksum: a word is mistyped or out of order.
    #[error("the checksum does not match: a word is mistyped or the words are out of order")]
    Checksum,
    /// Entropy of a length BIP39 does not define (sealed records only).
    #[error("entropy of {0} bytes is not a BIP39 length")]
    EntropyLength(usize),
}

impl From<bip39::Error> for MnemonicError {
    fn from(e: bip39::Error) -> Self {
        match e {
            bip39::Error::BadWordCount(n) => MnemonicError::WordCount(n),
            bip39::Error::UnknownWord(i) => MnemonicError::UnknownWord { index: i + 1 },
            bip39::Error::BadEntropyBitCount(bits) => MnemonicError::EntropyLength(bits / 8),
            bip39::Error::InvalidChecksum => MnemonicError::Checksum,
            // Only reachable with several word lists enabled; we enable English alone.
            bip39::Error::AmbiguousLanguages(_) => MnemonicError::Checksum,
        }
    }
}

/// A BIP39 mnemonic held in memory. Wiped when dropped.
pub struct Mnemonic(bip39::Mnemonic);

impl Mnemonic {
    /// A new mnemonic from fresh randomness.
    pub fn generate(words: WordCount) -> Mnemonic {
        let mut entropy = Zeroizing::new(vec![0u8; words.entropy_bytes()]);
        OsRng.fill_bytes(&mut entropy);
        // 16 and 32 bytes are valid BIP39 entropy lengths, so this cannot fail.
        match bip39::Mnemonic::from_entropy(&entropy) {
            Ok(m) => Mnemonic(m),
            Err(_) => unreachable!("16 and 32 bytes are BIP39 entropy lengths"),
        }
    }

    /// Imports typed words: case and runs of whitespace do not matter, the checksum does.
    pub fn parse(phrase: &str) -> Result<Mnemonic, MnemonicError> {
        let normalized = Zeroizing::new(
            phrase
                .split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(" "),
        );
        Ok(Mnemonic(bip39::Mnemonic::parse_in_normalized(
            bip39::Language::English,
            &normalized,
        )?))
    }

    /// Rebuilds a mnemonic from its entropy (as unsealed from storage).
    pub fn from_entropy(entropy: &[u8]) -> Result<Mnemonic, MnemonicError> {
        Ok(Mnemonic(bip39::Mnemonic::from_entropy(entropy)?))
    }

    /// The entropy, which is what the wallet seals at rest (16 to 32 bytes).
    pub fn entropy(&self) -> Zeroizing<Vec<u8>> {
        let (mut array, len) = self.0.to_entropy_array();
        let out = Zeroizing::new(array[..len].to_vec());
        array.zeroize();
        out
    }

    /// The words, separated by single spaces: for the one time the user is shown them.
    pub fn words(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for (i, word) in self.0.words().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
        out
    }

    /// Whether `typed` holds, at each 0-based position it names, the word there (case and
    /// surrounding spaces ignored): how the page checks that the words were written down. An
    /// empty list or a position past the end is `false`.
    pub fn confirms(&self, typed: &[(usize, &str)]) -> bool {
        !typed.is_empty()
            && typed.iter().all(|(at, word)| {
                self.0
                    .words()
                    .nth(*at)
                    .is_some_and(|w| w.eq_ignore_ascii_case(word.trim()))
            })
    }

    /// How many words it has.
    pub fn word_count(&self) -> usize {
        self.0.word_count()
    }

    /// The BIP39 seed (PBKDF2-HMAC-SHA512, 2048 rounds) for an optional passphrase, which must
    /// already be in Unicode NFKD form (ASCII is; the page and the CLI use none).
    pub fn seed(&self, passphrase: &str) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.0.to_seed_normalized(passphrase))
    }
}

impl Drop for Mnemonic {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mnemonic({} words, hidden)", self.word_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP39 reference vectors (trezor/python-mnemonic `vectors.json`, English, passphrase
    /// "TREZOR"): entropy, mnemonic, seed.
    const TREZOR_VECTORS: &[(&str, &str, &str)] = &[
        (
            "00000000000000000000000000000000",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
            "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
        ),
        (
            "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
            "legal winner thank year wave sausage worth useful legal winner thank yellow",
            "2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3c80937a1c1069be3a3a5bd381ee6260e8d9739fce1f607",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
            "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
        ),
    ];

    #[test]
    fn retyped_words_confirm_only_when_right() {
        let m = Mnemonic::parse(TREZOR_VECTORS[1].1).unwrap();
        // "legal winner thank year wave sausage worth useful legal winner thank yellow"
        assert!(m.confirms(&[(0, "legal"), (5, " Sausage "), (11, "yellow")]));
        assert!(!m.confirms(&[(0, "legal"), (5, "sausage"), (11, "winner")]));
        assert!(!m.confirms(&[(12, "legal")]), "past the end");
        assert!(!m.confirms(&[]), "nothing typed confirms nothing");
        assert!(!m.confirms(&[(3, "")]));
    }

    #[test]
    fn trezor_vectors() {
        for (entropy, words, seed) in TREZOR_VECTORS {
            let m = Mnemonic::parse(words).unwrap();
            assert_eq!(hex::encode(&*m.entropy()), *entropy);
            assert_eq!(&*m.words(), *words);
            assert_eq!(hex::encode(*m.seed("TREZOR")), *seed);
            let again = Mnemonic::from_entropy(&hex::decode(entropy).unwrap()).unwrap();
            assert_eq!(&*again.words(), *words);
        }
    }

    #[test]
    fn typed_words_are_normalized() {
        let m = Mnemonic::parse(
            "  Legal winner THANK year wave\tsausage worth useful legal winner thank yellow\n",
        )
        .unwrap();
        assert_eq!(
            hex::encode(&*m.entropy()),
            "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f"
        );
    }

    #[test]
    fn bad_phrases_are_refused_with_the_reason() {
        let good = TREZOR_VECTORS[1].1;
        assert_eq!(
            Mnemonic::parse("legal winner thank").unwrap_err(),
            MnemonicError::WordCount(3)
        );
        let unknown = good.replacen("wave", "wavy", 1);
        assert_eq!(
            Mnemonic::parse(&unknown).unwrap_err(),
            MnemonicError::UnknownWord { index: 5 }
        );
        let swapped = good.replacen("legal winner", "winner legal", 1);
        assert_eq!(
            Mnemonic::parse(&swapped).unwrap_err(),
            MnemonicError::Checksum
        );
    }

    #[test]
    fn generated_mnemonics_are_fresh_and_valid() {
        let a = Mnemonic::generate(WordCount::Twelve);
        let b = Mnemonic::generate(WordCount::TwentyFour);
        assert_eq!(a.word_count(), 12);
        assert_eq!(b.word_count(), 24);
        assert_ne!(
            &*a.entropy(),
            &*Mnemonic::generate(WordCount::Twelve).entropy()
        );
        assert_eq!(
            &*Mnemonic::parse(&a.words()).unwrap().entropy(),
            &*a.entropy()
        );
    }

    #[test]
    fn debug_hides_the_words() {
        let m = Mnemonic::parse(TREZOR_VECTORS[0].1).unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("abandon"), "{shown}");
    }
}
