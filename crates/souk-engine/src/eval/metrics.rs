//! Accuracy metrics of one ranked list against one user's test items, and list-level
//! (catalog) metrics over everyone's lists. Pure functions, testable on their own.
//!
//! Notation: `hits[i]` says whether the item at rank `i + 1` is a test item; `relevant`
//! is the number of test items `R`; gains are binary.
//! - `recall@K` = hits / min(K, R) (Liang et al. 2018; the `souk eval` contract), so a
//!   perfect list scores 1 even when R > K.
//! - `recall_total@K` = hits / R (LightGCN, ranx, trec_eval `recall_K`).
//! - `ndcg@K` = sum over hits of 1 / log2(rank + 1), divided by the ideal
//!   sum over ranks 1..=min(K, R) (Järvelin and Kekäläinen).
//! - `hr@K` = 1 if any hit in the top K.
//! - `precision@K` = hits / K (K even when fewer than K items could be ranked).
//! - `map@K` = sum over hit ranks r <= K of precision@r, divided by min(K, R) (as RecBole;
//!   ranx and trec_eval divide by R, which is the same whenever R <= K).
//! - `mrr` = 1 / rank of the first test item in the *full* ranking (no cut-off).
//! - `auc` = share of (test item, non-test candidate) pairs ranked the right way, ties
//!   counting one half.

/// `hits[i]` = whether `ranked[i]` is in `truth` (sorted).
pub fn hit_list(ranked: &[u32], truth: &[u32]) -> Vec<bool> {
    ranked.iter().map(|item| truth.binary_search(item).is_ok()).collect()
}

fn hits_at(hits: &[bool], k: usize) -> f64 {
    hits.iter().take(k).filter(|h| **h).count() as f64
}

/// hits@K / min(K, R).
pub fn recall(hits: &[bool], k: usize, relevant: usize) -> f64 {
    let denominator = k.min(relevant);
    if denominator == 0 {
        return 0.0;
    }
    hits_at(hits, k) / denominator as f64
}

/// hits@K / R.
pub fn recall_total(hits: &[bool], k: usize, relevant: usize) -> f64 {
    if relevant == 0 {
        return 0.0;
    }
    hits_at(hits, k) / relevant as f64
}

/// hits@K / K.
pub fn precision(hits: &[bool], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    hits_at(hits, k) / k as f64
}

/// 1 if any of the top K is a hit.
pub fn hit_rate(hits: &[bool], k: usize) -> f64 {
    if hits.iter().take(k).any(|h| *h) {
        1.0
    } else {
        0.0
    }
}

/// 1 / log2(rank + 1) for a 1-based rank.
pub fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 1) as f64).log2()
}

/// Binary-gain NDCG@K with the ideal list of min(K, R) hits.
pub fn ndcg(hits: &[bool], k: usize, relevant: usize) -> f64 {
    let ideal: f64 = (1..=k.min(relevant)).map(discount).sum();
    if ideal == 0.0 {
        return 0.0;
    }
    let dcg: f64 = hits.iter().take(k).enumerate().filter(|(_, h)| **h).map(|(i, _)| discount(i + 1)).sum();
    dcg / ideal
}

/// Average precision@K normalised by min(K, R).
pub fn average_precision(hits: &[bool], k: usize, relevant: usize) -> f64 {
    let denominator = k.min(relevant);
    if denominator == 0 {
        return 0.0;
    }
    let mut found = 0usize;
    let mut sum = 0.0;
    for (i, _) in hits.iter().take(k).enumerate().filter(|(_, h)| **h) {
        found += 1;
        sum += found as f64 / (i + 1) as f64;
    }
    sum / denominator as f64
}

/// 1 / (1-based rank of the first hit), 0 without a hit. Pass the full ranking for `mrr`.
pub fn reciprocal_rank(hits: &[bool]) -> f64 {
    hits.iter().position(|h| *h).map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// AUC of the scores of the test items against the scores of the other candidates:
/// P(positive beats negative) with ties counting 1/2. `None` when either side is empty.
/// Quadratic: the reference for the fast path in the evaluator, and for unit tests.
pub fn auc(positive: &[f32], negative: &[f32]) -> Option<f64> {
    if positive.is_empty() || negative.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in positive {
        for n in negative {
            if p > n {
                wins += 1.0;
            } else if p == n {
                wins += 0.5;
            }
        }
    }
    Some(wins / (positive.len() as f64 * negative.len() as f64))
}

/// Gini coefficient of non-negative counts (0 = every item recommended equally often,
/// → 1 = all recommendations go to one item); counts of items never recommended must be
/// included as zeros. 0 for an empty or all-zero input.
pub fn gini(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as f64;
    // G = sum_i (2i - n - 1) x_(i) / (n * sum x), i = 1..n over ascending x.
    let weighted: f64 = sorted.iter().enumerate().map(|(i, &x)| (2.0 * (i + 1) as f64 - n - 1.0) * x as f64).sum();
    weighted / (n * total as f64)
}

/// Self-information of an item in bits: -log2(share of training users who have it), an
/// item no training user has counting as one (so cold items get the highest, finite
/// novelty). `novelty@K` is its mean over every recommended (user, item) slot.
pub fn self_information(item_users: usize, train_users: usize) -> f64 {
    let users = train_users.max(1) as f64;
    -(item_users.max(1) as f64 / users).log2()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < EPS, "{a} != {b}");
    }

    #[test]
    fn hand_computed_list_with_three_test_items() {
        // Ranked: [7, 3, 9, 1, 4], truth {1, 3, 8}: hits at ranks 2 and 4.
        let hits = hit_list(&[7, 3, 9, 1, 4], &[1, 3, 8]);
        assert_eq!(hits, [false, true, false, true, false]);
        // recall@2 = 1 / min(2, 3) = 0.5; recall@5 = 2 / min(5, 3) = 2/3.
        close(recall(&hits, 2, 3), 0.5);
        close(recall(&hits, 5, 3), 2.0 / 3.0);
        // recall_total@2 = 1/3.
        close(recall_total(&hits, 2, 3), 1.0 / 3.0);
        // precision@5 = 2/5; hr@1 = 0; hr@2 = 1.
        close(precision(&hits, 5), 0.4);
        close(hit_rate(&hits, 1), 0.0);
        close(hit_rate(&hits, 2), 1.0);
        // ndcg@5: DCG = 1/log2(3) + 1/log2(5) = 0.630929753571457 + 0.430676558073393
        //        = 1.061606311644851; IDCG (3 hits) = 1 + 0.630929753571457 + 0.5
        //        = 2.130929753571458; NDCG = 0.498189257466413.
        close(ndcg(&hits, 5, 3), (1.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (1.0 + 1.0 / 3f64.log2() + 0.5));
        close(ndcg(&hits, 5, 3), 0.49818925746641285);
        // ndcg@2: DCG = 1/log2(3); IDCG over min(2, 3) = 2 ranks = 1 + 1/log2(3);
        //        NDCG = 0.630929753571457 / 1.630929753571457 = 0.386852807234542.
        close(ndcg(&hits, 2, 3), 0.3868528072345416);
        // map@5: precision at the hits = 1/2 and 2/4; (0.5 + 0.5) / min(5, 3) = 1/3.
        close(average_precision(&hits, 5, 3), 1.0 / 3.0);
        // map@2: 0.5 / min(2, 3) = 0.25.
        close(average_precision(&hits, 2, 3), 0.25);
        // mrr: first hit at rank 2.
        close(reciprocal_rank(&hits), 0.5);
    }

    #[test]
    fn perfect_and_empty_lists() {
        // Truth larger than K, top K all hits: recall@K and ndcg@K are 1, recall_total is not.
        let hits = [true, true, false];
        close(recall(&hits, 2, 5), 1.0);
        close(recall_total(&hits, 2, 5), 0.4);
        close(ndcg(&hits, 2, 5), 1.0);
        close(average_precision(&hits, 2, 5), 1.0);
        close(reciprocal_rank(&hits), 1.0);
        // No hits at all.
        let none = [false; 4];
        for value in [recall(&none, 4, 1), ndcg(&none, 4, 1), average_precision(&none, 4, 1), reciprocal_rank(&none)] {
            close(value, 0.0);
        }
        // A list shorter than K (few candidates): precision still divides by K.
        close(precision(&[true], 10), 0.1);
        close(recall(&[], 10, 0), 0.0);
    }

    #[test]
    fn hand_computed_auc_counts_ties_as_half() {
        // Positives {0.9, 0.4}, negatives {0.5, 0.4, 0.1}: pairs won
        // 0.9: 3 wins; 0.4: beats 0.1 (1), ties 0.4 (0.5), loses to 0.5 -> 1.5.
        // AUC = 4.5 / 6 = 0.75.
        close(auc(&[0.9, 0.4], &[0.5, 0.4, 0.1]).unwrap(), 0.75);
        close(auc(&[1.0], &[1.0, 1.0]).unwrap(), 0.5);
        assert_eq!(auc(&[], &[1.0]), None);
        assert_eq!(auc(&[1.0], &[]), None);
    }

    #[test]
    fn hand_computed_gini_and_novelty() {
        // Counts [0, 0, 4]: sorted ascending, weights 2i - n - 1 = -2, 0, 2;
        // G = (2 * 4) / (3 * 4) = 2/3 (the maximum for n = 3 is (n-1)/n).
        close(gini(&[4, 0, 0]), 2.0 / 3.0);
        close(gini(&[3, 3, 3]), 0.0);
        close(gini(&[0, 0]), 0.0);
        // Counts [1, 3]: weights -1, 1; G = (3 - 1) / (2 * 4) = 0.25.
        close(gini(&[3, 1]), 0.25);
        // An item half the users have: 1 bit; an item nobody has: as if one of 8 had it.
        close(self_information(4, 8), 1.0);
        close(self_information(0, 8), 3.0);
    }

    proptest! {
        /// The sorted formula equals the textbook definition
        /// G = sum_i sum_j |x_i - x_j| / (2 n^2 mean).
        #[test]
        fn gini_matches_the_mean_absolute_difference(counts in proptest::collection::vec(0u64..50, 1..30)) {
            let n = counts.len() as f64;
            let total: u64 = counts.iter().sum();
            let pairwise: f64 = counts.iter()
                .flat_map(|a| counts.iter().map(move |b| (*a as f64 - *b as f64).abs()))
                .sum();
            let expected = if total == 0 { 0.0 } else { pairwise / (2.0 * n * total as f64) };
            prop_assert!((gini(&counts) - expected).abs() < 1e-12);
        }

        /// NDCG and AP lie in [0, 1], are 1 exactly for an ideal list, and recall@K never
        /// drops below recall_total@K.
        #[test]
        fn list_metrics_are_bounded(hits in proptest::collection::vec(any::<bool>(), 0..30), k in 1usize..30, extra in 0usize..5) {
            let relevant = hits.iter().filter(|h| **h).count() + extra;
            for value in [ndcg(&hits, k, relevant), average_precision(&hits, k, relevant), recall(&hits, k, relevant)] {
                prop_assert!((0.0..=1.0 + 1e-12).contains(&value));
            }
            prop_assert!(recall(&hits, k, relevant) + 1e-12 >= recall_total(&hits, k, relevant));
            let ideal = vec![true; relevant];
            if relevant > 0 {
                prop_assert!((ndcg(&ideal, k, relevant) - 1.0).abs() < 1e-12);
                prop_assert!((average_precision(&ideal, k, relevant) - 1.0).abs() < 1e-12);
            }
        }
    }
}
