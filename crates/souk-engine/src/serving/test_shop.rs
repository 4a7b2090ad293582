//! A generated shop with a trained model set, for the serving tests.

use super::{ModelSet, RecommendConfig};
use crate::gen::{GenConfig, Generator};
use crate::recommend::EventWeights;
use crate::store::{EmbeddedStore, StoreConfig, StoreSink};

/// `config`'s generated shop in a store at `dir`, and a model set trained on it with the
/// default configuration.
pub(crate) fn trained_shop(dir: &std::path::Path, config: GenConfig) -> (EmbeddedStore, ModelSet) {
    let store = EmbeddedStore::open(dir, &StoreConfig::default()).unwrap();
    let generator = Generator::new(config).unwrap();
    let mut sink = StoreSink::new(&store);
    generator.run(&mut sink, &mut |_| {}).unwrap();
    sink.finish().unwrap();
    let set = ModelSet::train(&store, &RecommendConfig::default(), &EventWeights::default()).unwrap();
    (store, set)
}
