//! Text analysis shared by indexing and querying, so both sides always agree on terms.
//!
//! Text is normalised first: compatibility decomposition (full-width `ｉＰｈｏｎｅ１２`
//! becomes `iphone12`), accents dropped, lower case. It is then cut into chunks of letters,
//! digits and CJK characters. A chunk with CJK characters is segmented by jieba in *search*
//! mode (蓝牙耳机 gives 蓝牙, 耳机 and 蓝牙耳机); Latin words are stemmed with the English
//! Snowball stemmer. Separately, every run of CJK characters yields its characters and
//! character bigrams for the fallback field, so 处理 finds 待处理 even where jieba keeps
//! 待处理 whole.
//!
//! A query is cut into *units*: what the shopper typed as one word (jieba's default mode
//! for Chinese). A unit matches a document through its whole term, through all of its
//! search-mode parts, or through all of its bigrams; see [`super::query`].

use jieba_rs::Jieba;
use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Whether `c` is written without spaces between words (Han, kana, Hangul).
pub fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x3040..=0x30FF        // Hiragana, Katakana
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xAC00..=0xD7AF      // Hangul syllables
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0x20000..=0x2FA1F) // CJK extensions B–F and compatibility supplement
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Normalise text for matching: NFKD, without combining marks, lower case.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        out.extend(c.to_lowercase());
    }
    out
}

/// One word of a query; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryUnit {
    /// The unit as typed, normalised (for explanations and synonyms).
    pub surface: String,
    /// The whole unit as an index term (stemmed for Latin words).
    pub term: String,
    /// Search-mode parts other than the whole term (CJK units only).
    pub parts: Vec<String>,
    /// Characters (single-character units) or bigrams (longer CJK units).
    pub grams: Vec<String>,
    /// A Latin-script word: eligible for typo tolerance.
    pub latin: bool,
}

/// The analyzer: jieba with Souk's and the shop's dictionary words, and the English
/// stemmer.
pub struct Analyzer {
    jieba: Jieba,
    stemmer: Stemmer,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer").finish_non_exhaustive()
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new(std::iter::empty())
    }
}

impl Analyzer {
    /// jieba's bundled dictionary plus `words` (word, optional frequency) — brands and
    /// product words the shop wants kept whole.
    pub fn new<'a>(words: impl Iterator<Item = (&'a str, Option<usize>)>) -> Self {
        let mut jieba = Jieba::new();
        for (word, freq) in words {
            let word = normalize(word);
            if !word.trim().is_empty() {
                jieba.add_word(word.trim(), freq, None);
            }
        }
        Self { jieba, stemmer: Stemmer::create(Algorithm::English) }
    }

    fn term_of(&self, word: &str) -> Option<String> {
        if !word.chars().any(is_word_char) {
            return None;
        }
        if word.chars().all(|c| c.is_alphabetic() && !is_cjk(c)) {
            Some(self.stemmer.stem(word).into_owned())
        } else {
            Some(word.to_string())
        }
    }

    /// Index terms and CJK grams of `text`, appended to `terms` and `grams`.
    pub fn index_terms(&self, text: &str, terms: &mut Vec<String>, grams: &mut Vec<String>) {
        let text = normalize(text);
        for chunk in chunks(&text) {
            if chunk.chars().any(is_cjk) {
                for word in self.jieba.cut_for_search(chunk, true) {
                    terms.extend(self.term_of(word));
                }
                for run in cjk_runs(chunk) {
                    push_grams(run, true, grams);
                }
            } else {
                terms.extend(self.term_of(chunk));
            }
        }
    }

    /// The units of a query, in order.
    pub fn query_units(&self, query: &str) -> Vec<QueryUnit> {
        let text = normalize(query);
        let mut units = Vec::new();
        for chunk in chunks(&text) {
            if !chunk.chars().any(is_cjk) {
                units.extend(self.latin_unit(chunk));
                continue;
            }
            for word in self.jieba.cut(chunk, true) {
                if !word.chars().any(is_cjk) {
                    units.extend(self.latin_unit(word));
                    continue;
                }
                let Some(term) = self.term_of(word) else { continue };
                let mut parts: Vec<String> = Vec::new();
                for part in self.jieba.cut_for_search(word, true) {
                    if let Some(part) = self.term_of(part) {
                        if part != term && !parts.contains(&part) {
                            parts.push(part);
                        }
                    }
                }
                let mut grams = Vec::new();
                for run in cjk_runs(word) {
                    push_grams(run, false, &mut grams);
                }
                grams.dedup();
                units.push(QueryUnit { surface: word.to_string(), term, parts, grams, latin: false });
            }
        }
        units
    }

    fn latin_unit(&self, word: &str) -> Option<QueryUnit> {
        let term = self.term_of(word)?;
        let latin = word.chars().all(|c| c.is_alphabetic());
        Some(QueryUnit { surface: word.to_string(), term, parts: Vec::new(), grams: Vec::new(), latin })
    }
}

/// Maximal runs of word characters.
fn chunks(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_word_char(c)).filter(|s| !s.is_empty())
}

/// Maximal runs of CJK characters within a chunk.
fn cjk_runs(chunk: &str) -> impl Iterator<Item = &str> {
    chunk.split(|c: char| !is_cjk(c)).filter(|s| !s.is_empty())
}

/// Grams of a CJK run: for documents every character and every bigram; for a query word
/// its bigrams, or the character itself when it is one character long.
fn push_grams(run: &str, characters_too: bool, out: &mut Vec<String>) {
    let chars: Vec<char> = run.chars().collect();
    if chars.len() == 1 || characters_too {
        out.extend(chars.iter().map(|c| c.to_string()));
    }
    out.extend(chars.windows(2).map(|pair| pair.iter().collect::<String>()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(analyzer: &Analyzer, text: &str) -> (Vec<String>, Vec<String>) {
        let (mut terms, mut grams) = (Vec::new(), Vec::new());
        analyzer.index_terms(text, &mut terms, &mut grams);
        (terms, grams)
    }

    #[test]
    fn full_width_and_accents_are_folded() {
        assert_eq!(normalize("ｉＰｈｏｎｅ　１５ Café"), "iphone 15 cafe");
    }

    #[test]
    fn english_words_are_stemmed_and_numbers_kept() {
        let analyzer = Analyzer::default();
        let (terms, grams) = terms(&analyzer, "Wireless Headphones, 128GB");
        assert_eq!(terms, vec!["wireless", "headphon", "128gb"]);
        assert!(grams.is_empty());
    }

    #[test]
    fn chinese_is_segmented_in_search_mode_with_grams() {
        let analyzer = Analyzer::default();
        let (terms, grams) = terms(&analyzer, "无线蓝牙耳机");
        for expected in ["无线", "蓝牙", "耳机"] {
            assert!(terms.contains(&expected.to_string()), "{expected} in {terms:?}");
        }
        for expected in ["蓝", "牙耳", "耳机"] {
            assert!(grams.contains(&expected.to_string()), "{expected} in {grams:?}");
        }
    }

    #[test]
    fn mixed_queries_give_latin_and_chinese_units() {
        let analyzer = Analyzer::default();
        let units = analyzer.query_units("iPhone 手机壳");
        assert_eq!(units[0].term, "iphon");
        assert!(units[0].latin);
        assert!(units.iter().skip(1).any(|u| u.surface.contains("手机")), "{units:?}");
    }

    #[test]
    fn user_words_stay_whole() {
        let plain = Analyzer::default();
        let extended = Analyzer::new([("小熊猫仔", Some(10_000))].into_iter());
        let whole = |a: &Analyzer| a.query_units("小熊猫仔").iter().any(|u| u.term == "小熊猫仔");
        assert!(!whole(&plain));
        assert!(whole(&extended));
    }
}
