//! The producer's refusals that need its insides to show.

use crate::merge::Sum;
use crate::{Error, Pipeline};

/// A batch past the most parts one call numbers is refused with its own error, and nothing
/// of it is taken or enqueued. (The real limit, 2^32 - 1 parts, is checked the same way.)
#[test]
fn a_batch_over_the_limit_is_refused_with_its_own_error() -> Result<(), Error> {
    let pipeline = Pipeline::builder(Sum).build()?;
    let mut producer = pipeline.producer()?;
    let batch = (0..4).map(|i| [("/a", i), ("/b", i)]);
    assert_eq!(producer.stage_many(batch, 5), Err(Error::BatchTooLarge { parts: 6, max: 5 }));
    assert_eq!(producer.stage_many([[("/a", 1)]], 5), Ok(1));
    producer.staged.clear();
    producer.bounds.clear();
    assert_eq!(producer.commit([("/a", 1)])?, 1, "no number was taken by the refusal");
    assert_eq!(pipeline.shutdown()?.read("/a"), Some(1));
    Ok(())
}
