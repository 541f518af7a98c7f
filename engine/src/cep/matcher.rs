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
