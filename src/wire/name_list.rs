use super::DecodeError;

/// A borrowed, validated `name-list` (RFC 4251 §5): US-ASCII, comma-separated, no empty names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameList<'a> {
    raw: &'a str,
}

/// RFC 4251 §6: names are at most 64 characters.
pub const MAX_NAME_LEN: usize = 64;

impl<'a> NameList<'a> {
    pub fn parse(b: &'a [u8], field: &'static str) -> Result<Self, DecodeError> {
        let raw = std::str::from_utf8(b).map_err(|_| DecodeError::BadNameList { field })?;
        if raw.is_empty() {
            return Ok(NameList { raw });
        }
        for name in raw.split(',') {
            let ok = !name.is_empty()
                && name.len() <= MAX_NAME_LEN
                && name.bytes().all(|c| (0x21..0x7f).contains(&c));
            if !ok {
                return Err(DecodeError::BadNameList { field });
            }
        }
        Ok(NameList { raw })
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + Clone {
        let raw = self.raw;
        raw.split(',').filter(|s| !s.is_empty())
    }

    pub fn first(&self) -> Option<&'a str> {
        self.iter().next()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let nl = NameList::parse(b"a,b@c.com", "x").unwrap();
        assert_eq!(nl.iter().collect::<Vec<_>>(), ["a", "b@c.com"]);
        assert!(NameList::parse(b"", "x").unwrap().is_empty());
        assert!(NameList::parse(b"a,,b", "x").is_err());
        assert!(NameList::parse(b"a,", "x").is_err());
        assert!(NameList::parse(b"a b", "x").is_err());
        assert!(NameList::parse(&[0xff], "x").is_err());
        assert!(NameList::parse(&[b'a'; 65], "x").is_err());
    }
}
