//! One partition's matching: an attempt per row, decided in the order of
//! their first rows, so that the matches are those of a scan of the
//! partition from its start, whatever order the attempts finish in.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::eval::{Matched, Row, Step};
use super::nfa::State;
use super::{AfterMatch, MatchPlan};
use crate::error::Result;

/// One path through the automaton: the `Take` state it waits in and the
/// rows it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    pub state: usize,
    pub history: Vec<Step>,
}

/// The matches that start at one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Its first row's place in the partition, and time.
    pub start: u64,
    pub start_time: i64,
    /// Its live threads, most preferred first.
    pub threads: Vec<Thread>,
    /// A complete match, preferred to every thread after it (those were
    /// cut); threads before it may still find a better one.
    pub found: Option<Vec<Step>>,
}

impl Attempt {
    /// Decided: no thread can still find a match preferred to `found`.
    fn decided(&self) -> bool {
        self.threads.is_empty()
    }
}

/// A partition's attempts, by first row.
#[derive(Debug, Default)]
pub struct KeyMatcher {
    /// The encoded partition key.
    pub key: Box<[u8]>,
    /// The place the next row takes.
    pub next_seq: u64,
    pub attempts: VecDeque<Attempt>,
}

impl KeyMatcher {
    /// A partition seen for the first time (or again, after its attempts
    /// all ended: its rows' places start over, nothing holds the old ones).
    pub fn new(key: &[u8]) -> Self {
        Self {
            key: key.into(),
            ..Self::default()
        }
    }

    /// Feeds the partition's next row (its `seq` is given here): it
    /// starts an attempt and every attempt's threads try it. Returns the
    /// matches decided, in order.
    pub fn feed(&mut self, plan: &MatchPlan, row: Row) -> Result<Vec<Vec<Step>>> {
        let row = Arc::new(Row {
            seq: self.next_seq,
            ..row
        });
        self.next_seq += 1;
        let threads = plan
            .nfa
            .closure(plan.nfa.start)
            .into_iter()
            .map(|state| Thread {
                state,
                history: Vec::new(),
            })
            .collect();
        self.attempts.push_back(Attempt {
            start: row.seq,
            start_time: row.time,
            threads,
            found: None,
        });
        for attempt in &mut self.attempts {
            step(plan, attempt, &row)?;
        }
        let mut matches = Vec::new();
        self.decide(plan, &mut matches);
        Ok(matches)
    }

    /// Ends the threads that can no longer match by the watermark `wm`
    /// (every later row is after it): those past `WITHIN`, and all of them
    /// at the end of input. Returns the matches that decides.
    pub fn expire(&mut self, plan: &MatchPlan, wm: i64) -> Vec<Vec<Step>> {
        for a in &mut self.attempts {
            let timed_out = plan
                .within
                .is_some_and(|w| a.start_time.saturating_add(w) <= wm.saturating_add(1));
            if wm == i64::MAX || timed_out {
                a.threads.clear();
            }
        }
        let mut matches = Vec::new();
        self.decide(plan, &mut matches);
        matches
    }

    /// Emits the decided attempts at the front, skipping after each match
    /// as `AFTER MATCH SKIP` says.
    fn decide(&mut self, plan: &MatchPlan, matches: &mut Vec<Vec<Step>>) {
        while self.attempts.front().is_some_and(Attempt::decided) {
            let Some(attempt) = self.attempts.pop_front() else {
                break;
            };
            let Some(found) = attempt.found else { continue };
            let after = attempt.start + 1;
            let first_of = |v: usize| found.iter().find(|s| s.1 == v).map(|s| s.0.seq);
            let last_of = |v: usize| found.iter().rev().find(|s| s.1 == v).map(|s| s.0.seq);
            // Skipping to the match's own first row would find it again:
            // the next row instead (Flink fails the job there).
            let resume = match plan.after_match {
                AfterMatch::PastLastRow => found.last().map_or(after, |s| s.0.seq + 1),
                AfterMatch::ToNextRow => after,
                AfterMatch::ToFirst(v) => first_of(v).unwrap_or(after).max(after),
                AfterMatch::ToLast(v) => last_of(v).unwrap_or(after).max(after),
            };
            self.attempts.retain(|a| a.start >= resume);
            matches.push(found);
        }
    }

    /// The earliest first row of an attempt not yet decided: no match
    /// emitted later ends before it.
    pub fn earliest_open(&self) -> Option<i64> {
        self.attempts.front().map(|a| a.start_time)
    }
}

/// Tries `row` on every thread of `attempt`, in order of preference.
fn step(plan: &MatchPlan, attempt: &mut Attempt, row: &Arc<Row>) -> Result<()> {
    if attempt.threads.is_empty() {
        return Ok(());
    }
    if plan.within.is_some_and(|w| row.time - attempt.start_time >= w) {
        attempt.threads.clear();
        return Ok(());
    }
    let mut next: Vec<Thread> = Vec::new();
    // Threads that matched the same rows to the same variables and wait
    // in the same state have the same future: the preferred one is kept.
    let mut seen: HashSet<(usize, Vec<(u64, usize)>)> = HashSet::new();
    'threads: for thread in std::mem::take(&mut attempt.threads) {
        let State::Take { var, next: to } = plan.nfa.states[thread.state] else {
            continue;
        };
        let matched = Matched {
            history: &thread.history,
            current: Some((row, var)),
        };
        let holds = match &plan.defines[var] {
            Some(condition) => condition.holds(matched)?,
            None => true,
        };
        if !holds {
            continue;
        }
        let mut history = thread.history;
        history.push((Arc::clone(row), var));
        for state in plan.nfa.closure(to) {
            if plan.nfa.states[state] == State::Accept {
                // Every path after this one is less preferred.
                attempt.found = Some(history);
                break 'threads;
            }
            let path: Vec<(u64, usize)> = history.iter().map(|(r, v)| (r.seq, *v)).collect();
            if seen.insert((state, path)) {
                next.push(Thread {
                    state,
                    history: history.clone(),
                });
            }
        }
    }
    attempt.threads = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;
    use crate::cep::{Nfa, Pattern};

    /// `PATTERN (A B+? C)` where every row is any variable, skipping as
    /// `after`, over rows 1 s apart: the first rows of the matches.
    fn starts(after: AfterMatch, rows: u64) -> Vec<u64> {
        let reluctant = Pattern::Repeat {
            inner: Box::new(Pattern::Var(1)),
            min: 1,
            max: None,
            greedy: false,
        };
        let pattern = Pattern::Concat(vec![Pattern::Var(0), reluctant, Pattern::Var(2)]);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )]));
        let plan = MatchPlan {
            partition: Vec::new(),
            time_column: 0,
            derived: Vec::new(),
            variables: vec!["A".into(), "B".into(), "C".into()],
            nfa: Nfa::compile(&pattern).unwrap(),
            pattern_text: "A B+? C".into(),
            defines: vec![None, None, None],
            measures: Vec::new(),
            after_match: after,
            within: None,
            input_schema: Arc::clone(&schema),
            output_schema: schema,
            late_output: None,
        };
        let mut m = KeyMatcher::new(&[]);
        let mut found = Vec::new();
        for i in 0..rows {
            let row = Row {
                seq: 0,
                time: i as i64 * 1000,
                values: Vec::new(),
            };
            found.extend(m.feed(&plan, row).unwrap());
        }
        found.extend(m.expire(&plan, i64::MAX));
        for f in &found {
            assert_eq!(
                f.iter().map(|s| s.1).collect::<Vec<_>>(),
                vec![0, 1, 2],
                "the shortest match"
            );
        }
        found.iter().map(|f| f[0].0.seq).collect()
    }

    #[test]
    fn after_match_skip_picks_where_the_next_match_starts() {
        assert_eq!(starts(AfterMatch::PastLastRow, 7), vec![0, 3]);
        assert_eq!(starts(AfterMatch::ToNextRow, 5), vec![0, 1, 2]);
        assert_eq!(starts(AfterMatch::ToFirst(1), 5), vec![0, 1, 2]);
        assert_eq!(starts(AfterMatch::ToLast(2), 7), vec![0, 2, 4]);
        // The match's own first row: the next row instead.
        assert_eq!(starts(AfterMatch::ToFirst(0), 5), vec![0, 1, 2]);
    }
}
