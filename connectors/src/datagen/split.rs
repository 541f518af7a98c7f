//! Dividing a count among parallel subtasks.

/// Share `index` of `total` items divided into `parts` contiguous shares,
/// as `(offset, length)`: the first `total % parts` shares get one more,
/// as Flink splits sequences and row counts.
pub(crate) fn share(total: u128, parts: usize, index: usize) -> (u128, u128) {
    let parts = parts.max(1) as u128;
    let index = index as u128;
    let (base, extra) = (total / parts, total % parts);
    let offset = index * base + index.min(extra);
    let length = base + u128::from(index < extra);
    (offset, length)
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_are_contiguous_and_cover_everything() {
        let shares: Vec<_> = (0..3).map(|i| share(10, 3, i)).collect();
        assert_eq!(shares, vec![(0, 4), (4, 3), (7, 3)]);
        assert_eq!(share(2, 3, 2), (2, 0));
        assert_eq!(share(u64::MAX as u128 + 1, 2, 1), (1 << 63, 1 << 63));
    }
}
