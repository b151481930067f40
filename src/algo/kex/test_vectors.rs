//! Reader for tests/data/kex_vectors.txt: blocks separated by blank lines, `key = value`
//! lines, `#` comments, byte strings in hex.

use std::collections::HashMap;

pub(crate) struct Block<'a>(HashMap<&'a str, &'a str>);

impl<'a> Block<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a str> {
        self.0.get(key).copied()
    }

    pub(crate) fn hex(&self, key: &str) -> Vec<u8> {
        let v = self.get(key).unwrap_or_else(|| panic!("missing {key}"));
        hex::decode(v).unwrap_or_else(|e| panic!("{key}: {e}"))
    }
}

pub(crate) fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut cur = HashMap::new();
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.is_empty() {
            if !cur.is_empty() {
                out.push(Block(std::mem::take(&mut cur)));
            }
            continue;
        }
        let (k, v) = line.split_once(" = ").unwrap_or_else(|| panic!("bad line {line}"));
        cur.insert(k, v);
    }
    out
}
