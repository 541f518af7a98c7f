//! A `PATTERN` as a nondeterministic automaton whose choices are ordered:
//! a thread that follows the first branch of a split is preferred to one
//! that follows the second, which is how greedy and reluctant quantifiers
//! and left-first alternation pick one match among several.

/// A `PATTERN` over variables numbered from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// One row of a variable.
    Var(usize),
    /// Each part in turn.
    Concat(Vec<Pattern>),
    /// The first part that leads to a match, left first.
    Alt(Vec<Pattern>),
    /// `min` to `max` (unbounded: `None`) repetitions; greedy ones take as
    /// many rows as they can, reluctant ones (`?` after the quantifier) as
    /// few.
    Repeat {
        inner: Box<Pattern>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
}

/// A state of the automaton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Takes one row of `var`, then goes on at `next`.
    Take { var: usize, next: usize },
    /// Goes on at each of these, the first preferred.
    Split(Vec<usize>),
    /// A match is complete.
    Accept,
}

/// The compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nfa {
    /// State 0 is the one `Accept`.
    pub states: Vec<State>,
    /// Where every attempt begins (before the closure).
    pub start: usize,
}

/// More states than this is a pattern too large to run (bounded
/// quantifiers are unrolled).
const MAX_STATES: usize = 10_000;

impl Nfa {
    /// Compiles `pattern`, refusing what Flink refuses: a pattern that can
    /// match no row, and one whose last variable is greedy with room to
    /// grow (a match could never be known complete before the next row).
    pub fn compile(pattern: &Pattern) -> Result<Nfa, String> {
        if ends_greedy(pattern) {
            return Err(
                "a greedy quantifier on the last variable of a PATTERN is not supported (as in Flink): \
                 a match would wait for a row that ends it; make it reluctant (e.g. B+?) or add a variable after it"
                    .into(),
            );
        }
        let mut nfa = Nfa {
            states: vec![State::Accept],
            start: 0,
        };
        nfa.start = nfa.build(pattern, 0)?;
        if nfa.closure(nfa.start).contains(&0) {
            return Err("a PATTERN that can match no rows is not supported".into());
        }
        Ok(nfa)
    }

    fn push(&mut self, s: State) -> Result<usize, String> {
        if self.states.len() >= MAX_STATES {
            return Err(format!(
                "the PATTERN needs more than {MAX_STATES} states: its quantifiers are too large"
            ));
        }
        self.states.push(s);
        Ok(self.states.len() - 1)
    }

    /// The states of `p` followed by `next`; returns its entry. Built from
    /// the end, so that every state's successors exist already.
    fn build(&mut self, p: &Pattern, next: usize) -> Result<usize, String> {
        match p {
            Pattern::Var(var) => self.push(State::Take { var: *var, next }),
            Pattern::Concat(parts) => parts.iter().rev().try_fold(next, |next, part| self.build(part, next)),
            Pattern::Alt(parts) => {
                let entries = parts
                    .iter()
                    .map(|part| self.build(part, next))
                    .collect::<Result<_, _>>()?;
                self.push(State::Split(entries))
            }
            Pattern::Repeat {
                inner,
                min,
                max,
                greedy,
            } => {
                let order = |more: usize, done: usize| match greedy {
                    true => vec![more, done],
                    false => vec![done, more],
                };
                let mut entry = match max {
                    // A loop: its split is made first, its body goes back to it.
                    None => {
                        let split = self.push(State::Split(Vec::new()))?;
                        let body = self.build(inner, split)?;
                        self.states[split] = State::Split(order(body, next));
                        split
                    }
                    // Up to max - min optional copies, each skipping to the end.
                    Some(max) => {
                        let mut entry = next;
                        for _ in *min..*max {
                            let body = self.build(inner, entry)?;
                            entry = self.push(State::Split(order(body, next)))?;
                        }
                        entry
                    }
                };
                for _ in 0..*min {
                    entry = self.build(inner, entry)?;
                }
                Ok(entry)
            }
        }
    }

    /// The `Take` and `Accept` states reached from `from` without taking a
    /// row, most preferred first (each once: loops that take no row end).
    pub fn closure(&self, from: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut seen = vec![false; self.states.len()];
        let mut stack = vec![from];
        while let Some(s) = stack.pop() {
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            match &self.states[s] {
                State::Split(next) => stack.extend(next.iter().rev()),
                _ => out.push(s),
            }
        }
        out
    }
}

/// Whether the pattern's last variable can take one more row after a
/// complete match, preferring to (Flink refuses such patterns).
fn ends_greedy(p: &Pattern) -> bool {
    match p {
        Pattern::Var(_) => false,
        Pattern::Concat(parts) => parts.last().is_some_and(ends_greedy),
        Pattern::Alt(parts) => parts.iter().any(ends_greedy),
        Pattern::Repeat {
            inner,
            min,
            max,
            greedy,
        } => (*greedy && *max != Some(*min)) || ends_greedy(inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The preferred match of `pattern` over `rows` from the first row: the
    /// variable of each row taken (a row "is" every variable whose letter it
    /// holds), by exploring threads in priority order.
    fn first_match(pattern: &Pattern, rows: &[&str]) -> Option<Vec<usize>> {
        let nfa = Nfa::compile(pattern).unwrap();
        let mut threads: Vec<(usize, Vec<usize>)> = nfa.closure(nfa.start).into_iter().map(|s| (s, vec![])).collect();
        let mut found = None;
        for row in rows {
            let mut next = Vec::new();
            'threads: for (s, taken) in &threads {
                let State::Take { var, next: to } = nfa.states[*s] else {
                    continue;
                };
                if !row.contains(char::from(b'a' + var as u8)) {
                    continue;
                }
                let mut taken = taken.clone();
                taken.push(var);
                for t in nfa.closure(to) {
                    if nfa.states[t] == State::Accept {
                        found = Some(taken.clone());
                        break 'threads;
                    }
                    next.push((t, taken.clone()));
                }
            }
            threads = next;
            if threads.is_empty() {
                break;
            }
        }
        found
    }

    fn var(v: usize) -> Pattern {
        Pattern::Var(v)
    }

    fn rep(p: Pattern, min: u32, max: Option<u32>, greedy: bool) -> Pattern {
        Pattern::Repeat {
            inner: Box::new(p),
            min,
            max,
            greedy,
        }
    }

    #[test]
    fn greedy_quantifiers_take_as_many_rows_as_they_can() {
        // a b+ c over rows that are all b and c: b takes both.
        let p = Pattern::Concat(vec![var(0), rep(var(1), 1, None, true), var(2)]);
        assert_eq!(first_match(&p, &["a", "bc", "bc", "c"]), Some(vec![0, 1, 1, 2]));
    }

    #[test]
    fn reluctant_quantifiers_take_as_few_rows_as_they_can() {
        let p = Pattern::Concat(vec![var(0), rep(var(1), 1, None, false), var(2)]);
        assert_eq!(first_match(&p, &["a", "bc", "bc", "c"]), Some(vec![0, 1, 2]));
        let star = Pattern::Concat(vec![var(0), rep(var(1), 0, None, false), var(2)]);
        assert_eq!(first_match(&star, &["a", "bc", "c"]), Some(vec![0, 2]));
    }

    #[test]
    fn bounded_quantifiers_count_rows() {
        let exactly = Pattern::Concat(vec![rep(var(0), 3, Some(3), true), var(1)]);
        assert_eq!(first_match(&exactly, &["a", "a", "a", "b"]), Some(vec![0, 0, 0, 1]));
        assert_eq!(first_match(&exactly, &["a", "a", "b"]), None);
        let range = Pattern::Concat(vec![rep(var(0), 1, Some(2), true), var(1)]);
        assert_eq!(first_match(&range, &["ab", "ab", "ab", "b"]), Some(vec![0, 0, 1]));
        let reluctant = Pattern::Concat(vec![rep(var(0), 1, Some(2), false), var(1)]);
        assert_eq!(first_match(&reluctant, &["ab", "ab", "ab"]), Some(vec![0, 1]));
        let at_least = Pattern::Concat(vec![rep(var(0), 2, None, true), var(1)]);
        assert_eq!(first_match(&at_least, &["a", "b"]), None);
        assert_eq!(first_match(&at_least, &["a", "a", "ab", "b"]), Some(vec![0, 0, 0, 1]));
        let optional = Pattern::Concat(vec![var(0), rep(var(1), 0, Some(1), true), var(2)]);
        assert_eq!(first_match(&optional, &["a", "bc", "c"]), Some(vec![0, 1, 2]));
        assert_eq!(first_match(&optional, &["a", "c"]), Some(vec![0, 2]));
    }

    #[test]
    fn alternation_prefers_its_left_branch() {
        let p = Pattern::Concat(vec![Pattern::Alt(vec![var(0), var(1)]), var(2)]);
        assert_eq!(first_match(&p, &["ab", "c"]), Some(vec![0, 2]));
        assert_eq!(first_match(&p, &["b", "c"]), Some(vec![1, 2]));
        // A group repeated: (a b)+? c
        let group = Pattern::Concat(vec![rep(Pattern::Concat(vec![var(0), var(1)]), 1, None, false), var(2)]);
        assert_eq!(
            first_match(&group, &["a", "b", "a", "b", "c"]),
            Some(vec![0, 1, 0, 1, 2])
        );
    }

    #[test]
    fn patterns_that_cannot_end_or_match_nothing_are_refused() {
        assert!(Nfa::compile(&Pattern::Concat(vec![var(0), rep(var(1), 1, None, true)])).is_err());
        assert!(Nfa::compile(&rep(var(0), 0, None, false)).is_err());
        assert!(Nfa::compile(&Pattern::Concat(vec![var(0), rep(var(1), 2, Some(2), true)])).is_ok());
        assert!(Nfa::compile(&rep(var(0), 1, Some(100_000), false)).is_err());
    }
}
