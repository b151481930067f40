//! Algorithm negotiation (RFC 4253 §7.1): a pure function of the two KEXINITs.
//!
//! For every family the chosen algorithm is the first one on the *client's* list that the server
//! also supports. Names we do not know are skipped, never an error; markers such as `ext-info-c`
//! or `kex-strict-*` are never chosen because they are not on the other side's algorithm list.

use crate::wire::NameList;

/// The first name in `client` that is also in `server`.
pub fn choose<'s>(client: &NameList<'_>, server: &[&'s str]) -> Option<&'s str> {
    client.iter().find_map(|c| server.iter().copied().find(|s| *s == c))
}

/// Same, when both lists are plain slices (the client role computing what the server will pick).
pub fn choose_slices<'s>(client: &[&'s str], server: &NameList<'_>) -> Option<&'s str> {
    client.iter().copied().find(|c| server.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_preference_wins_and_unknown_names_are_skipped() {
        let client = NameList::parse(b"unknown@x,b,a", "k").unwrap();
        assert_eq!(choose(&client, &["a", "b"]), Some("b"));
        let client = NameList::parse(b"x,y", "k").unwrap();
        assert_eq!(choose(&client, &["a"]), None);
        let empty = NameList::parse(b"", "k").unwrap();
        assert_eq!(choose(&empty, &["a"]), None);
    }

    #[test]
    fn markers_are_never_chosen() {
        let client = NameList::parse(b"ext-info-c,kex-strict-c-v00@openssh.com,k1", "k").unwrap();
        assert_eq!(choose(&client, &["k1", "k2"]), Some("k1"));
    }
}
