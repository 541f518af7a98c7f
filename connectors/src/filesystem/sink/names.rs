//! The names of a sink subtask's part files, in whichever partition
//! directory they are: `part-<job>-<subtask>-<n>` numbered per subtask
//! across all directories, hidden (`.…inprogress`) until committed.

/// The file names of one subtask's part files.
#[derive(Debug)]
pub(super) struct PartNames {
    /// `part-<job>-<subtask>-`.
    pub(super) prefix: String,
}

/// A part file name, parsed.
#[derive(Debug, Clone)]
pub(super) struct Part {
    pub(super) number: u64,
    /// The checkpoint that committed it (visible parts but a bounded
    /// job's last).
    pub(super) checkpoint: Option<u64>,
    /// Not committed yet (in progress or pending).
    pub(super) hidden: bool,
}

impl PartNames {
    pub(super) fn new(job_id: &str, subtask: usize) -> Self {
        Self {
            prefix: format!("part-{job_id}-{subtask}-"),
        }
    }

    /// The committed name of part `n`, which readers see: committed by
    /// `checkpoint`, or when the input ended.
    pub(super) fn visible(&self, n: u64, checkpoint: Option<u64>) -> String {
        match checkpoint {
            Some(c) => format!("{}{n}-ckpt{c}", self.prefix),
            None => format!("{}{n}", self.prefix),
        }
    }

    /// The name of part `n` until committed: a leading `.` hides it from
    /// readers (Weir's and Flink's).
    pub(super) fn hidden(&self, n: u64) -> String {
        format!(".{}{n}.inprogress", self.prefix)
    }

    /// `name` as a part file of this subtask, or `None` for any other file.
    ///
    /// Numbers must be all digits (see [`number`]).
    pub(super) fn parse(&self, name: &str) -> Option<Part> {
        let (rest, hidden) = match name.strip_prefix('.') {
            Some(hidden) => (hidden.strip_suffix(".inprogress")?, true),
            None => (name, false),
        };
        let rest = rest.strip_prefix(&self.prefix)?;
        let (digits, checkpoint) = match rest.split_once("-ckpt") {
            Some((n, c)) if !hidden => (n, Some(number(c)?)),
            Some(_) => return None,
            None => (rest, None),
        };
        Some(Part {
            number: number(digits)?,
            checkpoint,
            hidden,
        })
    }
}

/// The subtask of a part file of job `job_id` (`[.]part-<job>-<subtask>-…`),
/// or `None` for any other file.
pub(super) fn subtask_of(name: &str, job_id: &str) -> Option<usize> {
    name.trim_start_matches('.')
        .strip_prefix("part-")?
        .strip_prefix(job_id)?
        .strip_prefix('-')?
        .split_once('-')
        .and_then(|(digits, _)| number(digits))
        .and_then(|n| usize::try_from(n).ok())
}

/// All digits: job ids may contain `-`, so a mere prefix match could take
/// job `a`'s subtask 1 (`part-a-1-`) for job `a-1`'s subtask 0
/// (`part-a-1-0-5`) and delete the other's files.
pub(super) fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
