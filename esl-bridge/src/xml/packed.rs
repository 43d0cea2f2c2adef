//! Finished XML kept small: the directory holds one `<user>` element per SIP user (hundreds of
//! thousands on a large node), and most of each is the same few dozen tag and variable names,
//! the Domain's own name and id, and ids written as 36 characters of hex.
//!
//! [`pack`] replaces those with control bytes, which the packed text can use freely: an answer
//! never carries a raw control character (`escape_into` writes tab, newline and carriage return
//! as character references and drops the others). [`unpack_into`] writes back exactly the text
//! that was packed, whatever it was (a stray control byte is escaped, not lost), so an answer is
//! the same byte for byte as if it had been kept whole. Unpacking a user is well under a
//! microsecond: a copy with a table lookup every few dozen bytes.

use uuid::Uuid;

/// What a Domain's packed text refers to instead of repeating it.
#[derive(Debug, Clone, Copy)]
pub struct Shared<'a> {
    /// The Domain's SIP domain, as it appears in the XML (escaped).
    pub domain: &'a str,
    /// The Domain's id, hyphenated lower-case.
    pub domain_id: &'a str,
}

/// The Domain's SIP domain.
const DOMAIN: u8 = 0x01;
/// The Domain's id.
const DOMAIN_ID: u8 = 0x02;
/// A hyphenated lower-case UUID follows as its 16 bytes.
const UUID: u8 = 0x03;
/// 32 lower-case hex digits (an a1-hash) follow as 16 bytes.
const HEX32: u8 = 0x04;
/// The next byte is itself (a control character in the text).
const LITERAL: u8 = 0x05;
/// The first byte of a one-byte [`WORDS`] entry.
const WORD: u8 = 0x06;
/// Two bytes: this, then the index of a [`WORDS`] entry past the one-byte ones.
const WORD_LONG: u8 = 0x1F;
/// Entries of [`WORDS`] that take one byte.
const SHORT_WORDS: usize = (WORD_LONG - WORD) as usize;

/// What the users of a Domain repeat (the most frequent first: they take one byte). No entry is
/// a prefix of another with the same first byte unless it is listed after it: the longest
/// match wins anyway.
const WORDS: &[&str] = &[
    "\"/>",
    "<variable name=\"user_context\" value=\"",
    "<variable name=\"effective_caller_id_name\" value=\"",
    "<variable name=\"effective_caller_id_number\" value=\"",
    "<variable name=\"outbound_caller_id_name\" value=\"",
    "<variable name=\"outbound_caller_id_number\" value=\"",
    "<variable name=\"toll_allow\" value=\"",
    "<variable name=\"presence_id\" value=\"",
    "<variable name=\"switchboard_record_inbound\" value=\"",
    "<variable name=\"switchboard_record_outbound\" value=\"",
    "<variable name=\"switchboard_restricted\" value=\"",
    "<variable name=\"switchboard_domain\" value=\"",
    "<variable name=\"switchboard_domain_id\" value=\"",
    "<variable name=\"switchboard_device_id\" value=\"",
    "<variable name=\"switchboard_location_id\" value=\"",
    "<variable name=\"switchboard_extension\" value=\"",
    "<variable name=\"switchboard_extension_id\" value=\"",
    "<variable name=\"switchboard_on_no_answer\" value=\"",
    "<variable name=\"switchboard_on_busy\" value=\"",
    "<variable name=\"switchboard_on_not_registered\" value=\"",
    "<param name=\"a1-hash\" value=\"",
    "<param name=\"max-registrations-per-extension\" value=\"",
    "<param name=\"allow-empty-password\" value=\"false\"/>",
    "<param name=\"dial-string\" value=\"",
    "<param name=\"mwi-account\" value=\"",
    // Two bytes from here on.
    "<param name=\"sip-forbid-register\" value=\"true\"/>",
    "</params><variables>",
    "</variables></user>",
    "<user id=\"",
    "\" cacheable=\"",
    "\"><params>",
    "<variable name=\"accountcode\" value=\"",
    "<variable name=\"callgroup\" value=\"",
    "<variable name=\"emergency_caller_id_name\" value=\"",
    "<variable name=\"emergency_caller_id_number\" value=\"",
    "{^^:sip_invite_domain=",
    ":presence_id=",
    "${sofia_contact(*/",
    ":originate_timeout=",
    ":callee_id_name=",
    ":callee_id_number=",
    ":switchboard_extension=",
    "[switchboard_device_id=",
    "switchboard_device_id=",
    "switchboard_location_id=",
    "switchboard_callee_extension_id=",
    "leg_timeout=",
    "error/user_not_registered",
    "error/user_busy",
    "error/unallocated_number",
    "loopback/",
    "switchboard-voicemail",
    "never",
    "always",
    "on_demand",
    "false",
];

/// For each first byte, the [`WORDS`] that start with it (a bit per entry).
const BY_FIRST_BYTE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < WORDS.len() {
        let first = WORDS[i].as_bytes()[0] as usize;
        table[first] |= 1 << i;
        i += 1;
    }
    table
};

/// Bytes that may start a [`WORDS`] entry, an id or a hash (hex digits), or need a
/// [`LITERAL`] (control characters); [`pack`] adds the first bytes of the Domain's name and id.
const STARTS: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = BY_FIRST_BYTE[c] != 0
            || c < 0x20
            || (c >= b'0' as usize && c <= b'9' as usize)
            || (c >= b'a' as usize && c <= b'f' as usize);
        c += 1;
    }
    table
};

const _: () = assert!(WORDS.len() <= 64, "BY_FIRST_BYTE holds a bit per word");
const _: () = assert!(WORDS.len() - SHORT_WORDS <= 256);

/// `text`, packed against the Domain's shared strings.
pub fn pack(text: &str, shared: &Shared<'_>) -> Box<[u8]> {
    let b = text.as_bytes();
    let domain = shared.domain.as_bytes();
    let domain_id = shared.domain_id.as_bytes();
    // Bytes that may start something to replace; runs of the others are copied whole.
    let mut starts = STARTS;
    for first in [domain.first(), domain_id.first()].into_iter().flatten() {
        starts[usize::from(*first)] = true;
    }
    let mut out = Vec::with_capacity(b.len() / 2);
    let mut i = 0;
    while i < b.len() {
        let plain = b[i..]
            .iter()
            .position(|c| starts[usize::from(*c)])
            .unwrap_or(b.len() - i);
        if plain > 0 {
            out.extend_from_slice(&b[i..i + plain]);
            i += plain;
            continue;
        }
        let rest = &b[i..];
        let c = rest[0];
        if domain.first() == Some(&c) && rest.starts_with(domain) {
            out.push(DOMAIN);
            i += domain.len();
            continue;
        }
        if domain_id.first() == Some(&c) && rest.starts_with(domain_id) {
            out.push(DOMAIN_ID);
            i += domain_id.len();
            continue;
        }
        if let Some(id) = uuid_at(rest) {
            out.push(UUID);
            out.extend_from_slice(id.as_bytes());
            i += 36;
            continue;
        }
        if let Some(bytes) = hex32_at(rest) {
            out.push(HEX32);
            out.extend_from_slice(&bytes);
            i += 32;
            continue;
        }
        if let Some(word) = longest_word(rest) {
            if word < SHORT_WORDS {
                out.push(WORD + word as u8);
            } else {
                out.push(WORD_LONG);
                out.push((word - SHORT_WORDS) as u8);
            }
            i += WORDS[word].len();
            continue;
        }
        if c < 0x20 {
            out.push(LITERAL);
        }
        out.push(c);
        i += 1;
    }
    out.into_boxed_slice()
}

/// Appends the text `packed` was packed from.
pub fn unpack_into(out: &mut String, packed: &[u8], shared: &Shared<'_>) {
    let mut i = 0;
    while i < packed.len() {
        // The literal run up to the next code: text as it was (codes are ASCII control bytes,
        // never inside a UTF-8 sequence, so the run is whole characters).
        let run = packed[i..]
            .iter()
            .position(|b| *b < 0x20)
            .map_or(packed.len(), |n| i + n);
        if run > i {
            out.push_str(std::str::from_utf8(&packed[i..run]).unwrap_or_default());
            i = run;
            continue;
        }
        let code = packed[i];
        i += 1;
        match code {
            DOMAIN => out.push_str(shared.domain),
            DOMAIN_ID => out.push_str(shared.domain_id),
            UUID | HEX32 => {
                let Some(bytes) = packed
                    .get(i..i + 16)
                    .and_then(|s| <[u8; 16]>::try_from(s).ok())
                else {
                    return;
                };
                i += 16;
                if code == UUID {
                    let mut buf = Uuid::encode_buffer();
                    out.push_str(
                        Uuid::from_bytes(bytes)
                            .as_hyphenated()
                            .encode_lower(&mut buf),
                    );
                } else {
                    for byte in bytes {
                        out.push(hex_digit(byte >> 4));
                        out.push(hex_digit(byte & 0x0f));
                    }
                }
            }
            LITERAL => {
                if let Some(&c) = packed.get(i) {
                    out.push(char::from(c));
                    i += 1;
                }
            }
            WORD_LONG => {
                if let Some(word) = packed
                    .get(i)
                    .and_then(|n| WORDS.get(SHORT_WORDS + *n as usize))
                {
                    out.push_str(word);
                }
                i += 1;
            }
            code => {
                if let Some(word) = WORDS.get(usize::from(code - WORD)) {
                    out.push_str(word);
                }
            }
        }
    }
}

/// [`unpack_into`] a new string.
pub fn unpack(packed: &[u8], shared: &Shared<'_>) -> String {
    let mut out = String::with_capacity(packed.len() * 3);
    unpack_into(&mut out, packed, shared);
    out
}

fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// A hyphenated lower-case UUID at the start of `b` (exactly as [`unpack_into`] writes one).
fn uuid_at(b: &[u8]) -> Option<Uuid> {
    let text = b.get(..36)?;
    let mut bytes = [0u8; 16];
    let mut n = 0;
    let mut k = 0;
    while k < 36 {
        if matches!(k, 8 | 13 | 18 | 23) {
            if text[k] != b'-' {
                return None;
            }
            k += 1;
            continue;
        }
        bytes[n] = (hex_value(text[k])? << 4) | hex_value(text[k + 1])?;
        n += 1;
        k += 2;
    }
    Some(Uuid::from_bytes(bytes))
}

/// 32 lower-case hex digits at the start of `b`.
fn hex32_at(b: &[u8]) -> Option<[u8; 16]> {
    let text = b.get(..32)?;
    let mut bytes = [0u8; 16];
    for (n, pair) in text.chunks_exact(2).enumerate() {
        bytes[n] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(bytes)
}

/// The longest of [`WORDS`] at the start of `b`.
fn longest_word(b: &[u8]) -> Option<usize> {
    let mut candidates = BY_FIRST_BYTE[usize::from(b[0])];
    let mut best: Option<usize> = None;
    while candidates != 0 {
        let i = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        let word = WORDS[i].as_bytes();
        // Many entries share their first bytes (`<variable name="…`): their last byte and
        // the one halfway tell most apart before the whole comparison.
        let (last, half) = (word.len() - 1, word.len() / 2);
        if b.len() > last
            && b[last] == word[last]
            && b[half] == word[half]
            && b.starts_with(word)
            && best.is_none_or(|j| WORDS[j].len() < word.len())
        {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHARED: Shared<'static> = Shared {
        domain: "acme.example.net",
        domain_id: "00000000-0000-0000-0000-000000000001",
    };

    fn round_trip(text: &str) {
        let packed = pack(text, &SHARED);
        assert_eq!(unpack(&packed, &SHARED), text, "packed: {packed:?}");
    }

    #[test]
    fn a_user_element_comes_back_byte_for_byte_in_a_fraction_of_its_size() {
        let user = concat!(
            "<user id=\"d0000005\" cacheable=\"300000\"><params>",
            "<param name=\"a1-hash\" value=\"244f77a49923efae3943ee66abc650bb\"/>",
            "<param name=\"max-registrations-per-extension\" value=\"2\"/>",
            "<param name=\"allow-empty-password\" value=\"false\"/>",
            "<param name=\"dial-string\" value=\"{^^:sip_invite_domain=acme.example.net:presence_id=1005@acme.example.net}${sofia_contact(*/d0000005@acme.example.net)}\"/>",
            "<param name=\"mwi-account\" value=\"1005@acme.example.net\"/></params><variables>",
            "<variable name=\"user_context\" value=\"acme.example.net\"/>",
            "<variable name=\"effective_caller_id_name\" value=\"Zoë &amp; Co\"/>",
            "<variable name=\"switchboard_domain_id\" value=\"00000000-0000-0000-0000-000000000001\"/>",
            "<variable name=\"switchboard_device_id\" value=\"0192a4c1-7f3a-7cc0-9d1e-5b3c2a1f0e9d\"/>",
            "</variables></user>",
        );
        let packed = pack(user, &SHARED);
        assert!(
            packed.len() * 4 < user.len(),
            "{} of {}",
            packed.len(),
            user.len()
        );
        round_trip(user);
    }

    #[test]
    fn near_misses_and_control_bytes_stay_as_they_were() {
        for text in [
            "",
            "acme.example.ne",
            "ACME.EXAMPLE.NET",
            "0192A4C1-7F3A-7CC0-9D1E-5B3C2A1F0E9D",
            "0192a4c1-7f3a-7cc0-9d1e-5b3c2a1f0e9",
            "0192a4c17f3a7cc09d1e5b3c2a1f0e9d0192a4c1",
            "a\u{1}b\u{1f}c\td\ne\u{5}",
            "\"/\"/>\"/><variable name=\"switchboard_domain\" value=\"x",
            "<variable name=\"switchboard_domain_id\" value=\"",
        ] {
            round_trip(text);
        }
    }

    proptest! {
        #[test]
        fn any_text_comes_back_as_it_was(
            parts in proptest::collection::vec(
                prop_oneof![
                    any::<String>(),
                    proptest::sample::select(WORDS.to_vec()).prop_map(str::to_owned),
                    Just(SHARED.domain.to_owned()),
                    Just(SHARED.domain_id.to_owned()),
                    any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
                    any::<u128>().prop_map(|n| format!("{n:032x}")),
                    "[0-9a-f\\-]{0,40}",
                ],
                0..12,
            )
        ) {
            let text = parts.concat();
            let packed = pack(&text, &SHARED);
            prop_assert_eq!(unpack(&packed, &SHARED), text);
        }
    }
}
