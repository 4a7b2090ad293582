//! A union of queries that scores a document only when asked: the alternatives of one
//! query word (the word in each text field, its parts, its character grams) inside a
//! conjunction of words.
//!
//! tantivy's union (`BufferedUnionScorer`) fills a window of 4,096 documents at a time and
//! scores every posting in it. Inside an intersection ("red sweater"), the rarest word
//! leads and the others are sought to its documents, so a common word's union scores all
//! of its postings, matched or not: at 1M items "red" has tens of thousands for a few
//! hundred matches. This union moves each alternative by its skip lists and sums the
//! scores of the alternatives on the current document only when the document is scored.
//! Scores are the same sums, added in the alternatives' order as tantivy's union adds them.
//!
//! Used where a query has two words or more; a one-word query scores every match anyway,
//! where tantivy's windowed union is the faster walk.

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, Term, TERMINATED};

/// The union of `queries`, its score the sum of the scores of those that match.
#[derive(Debug)]
pub(super) struct LazyUnion {
    queries: Vec<Box<dyn Query>>,
}

impl LazyUnion {
    /// The union of `queries`; one query stands for itself.
    pub(super) fn of(mut queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
        if queries.len() == 1 {
            return queries.remove(0);
        }
        Box::new(LazyUnion { queries })
    }
}

impl Clone for LazyUnion {
    fn clone(&self) -> Self {
        LazyUnion { queries: self.queries.iter().map(|q| q.box_clone()).collect() }
    }
}

impl Query for LazyUnion {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let weights = self.queries.iter().map(|q| q.weight(enable_scoring)).collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(LazyUnionWeight { weights }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for query in &self.queries {
            query.query_terms(visitor);
        }
    }
}

struct LazyUnionWeight {
    weights: Vec<Box<dyn Weight>>,
}

impl Weight for LazyUnionWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut scorers = Vec::with_capacity(self.weights.len());
        for weight in &self.weights {
            let scorer = weight.scorer(reader, boost)?;
            if scorer.doc() != TERMINATED {
                scorers.push(scorer);
            }
        }
        Ok(Box::new(LazyUnionScorer::new(scorers)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!("document {doc} does not match")));
        }
        let mut explanation = Explanation::new("sum of the alternatives that match", scorer.score());
        for weight in &self.weights {
            if let Ok(detail) = weight.explain(reader, doc) {
                explanation.add_detail(detail);
            }
        }
        Ok(explanation)
    }
}

/// See the module docs. `doc` is the smallest current document of the alternatives.
struct LazyUnionScorer {
    scorers: Vec<Box<dyn Scorer>>,
    doc: DocId,
}

impl LazyUnionScorer {
    fn new(scorers: Vec<Box<dyn Scorer>>) -> Self {
        let doc = scorers.iter().map(|s| s.doc()).min().unwrap_or(TERMINATED);
        LazyUnionScorer { scorers, doc }
    }
}

impl DocSet for LazyUnionScorer {
    fn advance(&mut self) -> DocId {
        let current = self.doc;
        let mut next = TERMINATED;
        for scorer in &mut self.scorers {
            let mut doc = scorer.doc();
            if doc == current {
                doc = scorer.advance();
            }
            next = next.min(doc);
        }
        self.doc = next;
        next
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        let mut next = TERMINATED;
        for scorer in &mut self.scorers {
            let mut doc = scorer.doc();
            if doc < target {
                doc = scorer.seek(target);
            }
            next = next.min(doc);
        }
        self.doc = next;
        next
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.scorers.iter().map(|s| s.size_hint()).max().unwrap_or(0)
    }
}

impl Scorer for LazyUnionScorer {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        let mut total: Score = 0.0;
        for scorer in &mut self.scorers {
            if scorer.doc() == doc {
                total += scorer.score();
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::{BooleanQuery, BoostQuery, Occur, TermQuery};
    use tantivy::schema::{IndexRecordOption, Schema, TEXT};
    use tantivy::{doc, Index};

    #[test]
    fn scores_and_matches_equal_the_boolean_union_inside_and_outside_an_intersection() {
        let mut schema = Schema::builder();
        let title = schema.add_text_field("title", TEXT);
        let body = schema.add_text_field("body", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let colours = ["red", "blue", "green"];
        let things = ["sweater", "shoes", "lamp", "red lamp"];
        for i in 0..600usize {
            let title_text = format!("{} {}", colours[i % 3], things[i % 4]);
            let body_text = if i % 5 == 0 { format!("a {} thing", colours[(i / 5) % 3]) } else { "plain".to_string() };
            writer.add_document(doc!(title => title_text, body => body_text)).unwrap();
            if i % 150 == 149 {
                writer.commit().unwrap();
            }
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let term = |field, text: &str| -> Box<dyn Query> {
            let query = TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::WithFreqs);
            Box::new(BoostQuery::new(Box::new(query), if field == title { 3.0 } else { 1.0 }))
        };
        let alternatives = |text: &str| vec![term(title, text), term(body, text)];
        let boolean = |text: &str| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(alternatives(text).into_iter().map(|q| (Occur::Should, q)).collect()))
        };
        let both = |a: Box<dyn Query>, b: Box<dyn Query>| BooleanQuery::new(vec![(Occur::Must, a), (Occur::Must, b)]);
        let ranked = |query: &dyn Query| {
            let mut top = searcher.search(query, &TopDocs::with_limit(1_000)).unwrap();
            top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            top
        };
        for word in ["red", "lamp", "missing"] {
            let lazy = LazyUnion::of(alternatives(word));
            assert_eq!(ranked(lazy.as_ref()), ranked(boolean(word).as_ref()), "{word}");
        }
        let lazy = both(LazyUnion::of(alternatives("red")), LazyUnion::of(alternatives("lamp")));
        let eager = both(boolean("red"), boolean("lamp"));
        let found = ranked(&lazy);
        assert!(!found.is_empty());
        assert_eq!(found, ranked(&eager));
        assert_eq!(searcher.search(&lazy, &Count).unwrap(), found.len());
        // One alternative stands for itself.
        assert!(LazyUnion::of(vec![term(title, "red")]).downcast_ref::<LazyUnion>().is_none());
    }
}
