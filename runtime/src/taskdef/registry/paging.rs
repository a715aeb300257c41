//! Opaque `nextToken`s for the list operations.
//!
//! A token records where the previous page ended and the filter it was issued for
//! (ECS: "be sure to keep the status value constant in each subsequent request"), as
//! hex-encoded JSON. A token from another filter, or one that was edited, is refused.

use serde::{Deserialize, Serialize};

/// ECS's default and largest `maxResults` for the task definition lists.
pub const MAX_RESULTS: usize = 100;

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more results follow.
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Token<K> {
    /// The filter the token belongs to.
    pub(super) filter: String,
    /// The last key of the previous page.
    pub(super) after: K,
}

pub(super) fn encode<K: Serialize>(filter: &str, after: K) -> String {
    let json = serde_json::to_vec(&Token {
        filter: filter.to_owned(),
        after,
    })
    .unwrap_or_default();
    hex::encode(json)
}

/// The key a token resumes after, if it is well-formed and issued for `filter`.
pub(super) fn decode<K: for<'de> Deserialize<'de>>(token: &str, filter: &str) -> Option<K> {
    let bytes = hex::decode(token).ok()?;
    let t: Token<K> = serde_json::from_slice(&bytes).ok()?;
    (t.filter == filter).then_some(t.after)
}

/// `maxResults` as a page size, if within 1–100.
pub(super) fn page_size(max_results: Option<i32>) -> Option<usize> {
    match max_results {
        None => Some(MAX_RESULTS),
        Some(n) if (1..=MAX_RESULTS as i32).contains(&n) => Some(n as usize),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_only_for_their_filter() {
        let t = encode("ACTIVE|ASC|", ("web".to_string(), 3u32));
        assert_eq!(
            decode::<(String, u32)>(&t, "ACTIVE|ASC|"),
            Some(("web".into(), 3))
        );
        assert_eq!(decode::<(String, u32)>(&t, "INACTIVE|ASC|"), None);
        assert_eq!(decode::<(String, u32)>("zz", "ACTIVE|ASC|"), None);
        assert_eq!(
            decode::<(String, u32)>(&hex::encode("{}"), "ACTIVE|ASC|"),
            None
        );
        assert_eq!(page_size(None), Some(100));
        assert_eq!(page_size(Some(0)), None);
        assert_eq!(page_size(Some(101)), None);
    }
}
