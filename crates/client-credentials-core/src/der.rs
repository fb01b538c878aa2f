//! The little DER the core reads: one element at a time, single-byte tags, definite
//! lengths of at most four bytes (a certificate's public key, aws-lc's `RSAPublicKey`, the
//! shape of a key or certificate). Anything else is `None`, never a panic.

/// One DER element at the start of `der`: its tag, its contents and what follows it.
pub(crate) fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        n @ 0..=0x7f => (usize::from(n), rest),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            let bytes = rest.get(..count)?;
            let len = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
            (len, rest.get(count..)?)
        }
        _ => return None,
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// The contents of the element at the start of `der` and what follows it, if its tag is
/// `tag`.
#[cfg(feature = "jwt")]
pub(crate) fn read(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match tlv(der)? {
        (t, contents, rest) if t == tag => Some((contents, rest)),
        _ => None,
    }
}

/// Whether `der` is exactly one SEQUENCE, its length matching: the shape of every key and
/// certificate, checked before anything reads them.
pub(crate) fn is_sequence(der: &[u8]) -> bool {
    matches!(tlv(der), Some((0x30, _, [])))
}
