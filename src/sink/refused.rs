//! Finding the rows a destination refuses, once it has refused a batch as a
//! whole: bisection, shared by the sinks whose servers answer per request
//! rather than per row (ClickHouse, PostgreSQL).

use std::future::Future;
use std::ops::Range;

/// Why an attempt at writing a range of rows did not write it.
#[derive(Debug)]
pub enum Refusal<E> {
    /// The destination refused the data: some row of the range is bad. The
    /// text is the destination's reason.
    Data(String),
    /// Anything else (connection lost, a fatal error): ends the search.
    Other(E),
}

/// A row the destination refused on its own, with the destination's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRow {
    /// Index of the row among the `count` rows.
    pub index: usize,
    /// The destination's reason.
    pub reason: String,
}

/// Writes any range of a batch's rows (in one request or transaction).
pub trait RangeWriter: Send {
    /// What ends the search (not a refusal of the data).
    type Error: Send;

    /// Writes rows `range` (never empty), all or nothing.
    fn write_range(
        &mut self,
        range: Range<usize>,
    ) -> impl Future<Output = Result<(), Refusal<Self::Error>>> + Send;
}

/// Writes rows `0..count` through `writer`. A range the destination
/// refuses is split into halves until each bad row stands alone; every
/// other row is written exactly once, in order. A lone bad row among `n`
/// costs about 2·log2(n) attempts.
///
/// Returns the refused rows in ascending order, or the first
/// [`Refusal::Other`] error (ranges written before it stay written, so the
/// caller's write must be safe to repeat).
pub async fn write_isolating_refused<W: RangeWriter>(
    count: usize,
    writer: &mut W,
) -> Result<Vec<RefusedRow>, W::Error> {
    let mut refused = Vec::new();
    // A stack whose top is the earliest range still to write.
    let mut pending = Vec::new();
    pending.push(0..count);
    while let Some(range) = pending.pop() {
        if range.is_empty() {
            continue;
        }
        match writer.write_range(range.clone()).await {
            Ok(()) => {}
            Err(Refusal::Data(reason)) if range.len() == 1 => refused.push(RefusedRow {
                index: range.start,
                reason,
            }),
            Err(Refusal::Data(_)) => {
                let middle = range.start + range.len() / 2;
                pending.push(middle..range.end);
                pending.push(range.start..middle);
            }
            Err(Refusal::Other(err)) => return Err(err),
        }
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refuses any range holding a row of `bad`; records what it wrote.
    struct Rows {
        bad: Vec<usize>,
        written: Vec<usize>,
        attempts: usize,
        broken: bool,
    }

    impl RangeWriter for Rows {
        type Error = &'static str;

        async fn write_range(&mut self, range: Range<usize>) -> Result<(), Refusal<&'static str>> {
            self.attempts += 1;
            if self.broken {
                return Err(Refusal::Other("connection lost"));
            }
            if let Some(row) = range.clone().find(|row| self.bad.contains(row)) {
                return Err(Refusal::Data(format!("row {row} is bad")));
            }
            self.written.extend(range);
            Ok(())
        }
    }

    /// Runs the search; returns the refused indices and the writer.
    async fn search(count: usize, bad: &[usize]) -> (Vec<usize>, Rows) {
        let mut rows = Rows {
            bad: bad.to_vec(),
            written: Vec::new(),
            attempts: 0,
            broken: false,
        };
        let refused = write_isolating_refused(count, &mut rows)
            .await
            .expect("no other errors");
        (refused.iter().map(|row| row.index).collect(), rows)
    }

    #[tokio::test]
    async fn isolates_each_bad_row_and_writes_the_rest_once_in_order() {
        let (refused, rows) = search(100, &[0, 37, 38, 99]).await;
        assert_eq!(refused, vec![0, 37, 38, 99]);
        let expected: Vec<usize> = (0..100).filter(|i| ![0, 37, 38, 99].contains(i)).collect();
        assert_eq!(rows.written, expected);
    }

    #[tokio::test]
    async fn a_good_batch_takes_one_attempt_and_a_lone_bad_row_few() {
        assert_eq!(search(5000, &[]).await.1.attempts, 1);
        let (refused, rows) = search(5000, &[4321]).await;
        assert_eq!(refused, vec![4321]);
        assert_eq!(rows.written.len(), 4999);
        assert!(rows.attempts <= 2 * 13 + 1, "{} attempts", rows.attempts);
    }

    #[tokio::test]
    async fn the_reason_is_the_destinations_and_other_errors_stop_the_search() {
        let mut rows = Rows {
            bad: vec![1],
            written: Vec::new(),
            attempts: 0,
            broken: false,
        };
        let refused = write_isolating_refused(3, &mut rows).await;
        assert_eq!(
            refused,
            Ok(vec![RefusedRow {
                index: 1,
                reason: "row 1 is bad".into()
            }])
        );
        rows.broken = true;
        assert_eq!(
            write_isolating_refused(3, &mut rows).await,
            Err("connection lost")
        );
    }
}
