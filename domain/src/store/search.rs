//! Text search in lists: `LIKE` patterns whose only wildcards are the ones put there here, so
//! `%` and `_` in a search match themselves.

use sea_orm::sea_query::LikeExpr;

/// The escape character of every pattern built here.
const ESCAPE: char = '\\';

/// Escapes the `LIKE` wildcards (and the escape character) of `text`.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c == '_' || c == ESCAPE {
            out.push(ESCAPE);
        }
        out.push(c);
    }
    out
}

/// Matches values holding `text` anywhere.
pub fn contains(text: &str) -> LikeExpr {
    LikeExpr::new(format!("%{}%", escape_like(text))).escape(ESCAPE)
}

/// Matches values starting with `text`.
pub fn starts_with(text: &str) -> LikeExpr {
    LikeExpr::new(format!("{}%", escape_like(text))).escape(ESCAPE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("api_key."), "api\\_key.");
        assert_eq!(escape_like("a%b\\c"), "a\\%b\\\\c");
    }
}
