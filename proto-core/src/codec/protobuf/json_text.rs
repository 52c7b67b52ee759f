//! The JSON text forms of protobuf values that JSON writes as strings:
//! base64 for bytes (what k8s-openapi's `ByteString` reads and writes) and
//! RFC 3339 for `Time` and `MicroTime`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode standard base64 (padding optional).
pub(crate) fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid base64 character {:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("truncated base64".into());
    }
    Ok(out)
}

/// The RFC 3339 text of a UTC instant, written in place (no allocation):
/// at most `2006-01-02T15:04:05.999999999Z`, 30 bytes.
pub(crate) struct TimeText {
    bytes: [u8; 30],
    len: usize,
}

impl TimeText {
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    /// `value` (under 100) as two digits.
    fn two(&mut self, value: u32) {
        self.bytes[self.len] = b'0' + (value / 10 % 10) as u8;
        self.bytes[self.len + 1] = b'0' + (value % 10) as u8;
        self.len += 2;
    }

    /// `value`'s last `width` decimal digits, zero-padded.
    fn digits(&mut self, mut value: u32, width: usize) {
        let end = self.len + width;
        for at in (self.len..end).rev() {
            self.bytes[at] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len = end;
    }
}

/// The RFC 3339 text of a UTC instant: seconds precision for `Time` (its
/// `nanos` dropped), six fraction digits for `MicroTime`.
pub(crate) fn format_time(seconds: i64, nanos: i32, micro: bool) -> Result<TimeText, String> {
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(format!("nanos {nanos} out of range"));
    }
    // 0000-01-01 to 9999-12-31: what four year digits can say.
    if !(-62_167_219_200..=253_402_300_799).contains(&seconds) {
        return Err(format!("seconds {seconds} outside years 0000 to 9999"));
    }
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    // `Time` is whole seconds: Go's JSON (RFC 3339) and protobuf encoders
    // drop its nanoseconds, so a `nanos` on the wire is not part of the value.
    let mut out = TimeText {
        bytes: [0; 30],
        len: 0,
    };
    out.digits(y as u32, 4);
    out.push(b'-');
    out.two(m);
    out.push(b'-');
    out.two(d);
    out.push(b'T');
    out.two(secs / 3600);
    out.push(b':');
    out.two(secs / 60 % 60);
    out.push(b':');
    out.two(secs % 60);
    if micro {
        out.push(b'.');
        out.digits(nanos as u32 / 1000, 6);
    }
    out.push(b'Z');
    Ok(out)
}

/// Parse RFC 3339 (`2006-01-02T15:04:05[.frac](Z|±hh:mm)`) into seconds and
/// nanoseconds since the Unix epoch.
pub(crate) fn parse_time(text: &str) -> Result<(i64, i32), String> {
    if let Some(seconds) = parse_plain_time(text.as_bytes()) {
        return Ok((seconds, 0));
    }
    let bad = || format!("invalid RFC 3339 time {text:?}");
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let s = text.get(r).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return Err(bad());
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let minutes = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let seconds = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    Ok((seconds, nanos as i32))
}

/// The form Kubernetes writes every `Time` in, `2006-01-02T15:04:05Z`,
/// read without the general parser's steps; `None` for any other text.
fn parse_plain_time(b: &[u8]) -> Option<i64> {
    let [
        y0,
        y1,
        y2,
        y3,
        b'-',
        mo0,
        mo1,
        b'-',
        d0,
        d1,
        b'T',
        h0,
        h1,
        b':',
        mi0,
        mi1,
        b':',
        s0,
        s1,
        b'Z',
    ] = *b
    else {
        return None;
    };
    let digit = |c: u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
    let pair = |a: u8, b: u8| Some(digit(a)? * 10 + digit(b)?);
    let year = pair(y0, y1)? * 100 + pair(y2, y3)?;
    let (month, day) = (pair(mo0, mo1)?, pair(d0, d1)?);
    let (hour, minute, second) = (pair(h0, h1)?, pair(mi0, mi1)?, pair(s0, s1)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

// Howard Hinnant's civil-calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_base64_round_trips() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 200) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert!(base64_decode("Zm9v!").is_err());
    }

    #[test]
    fn protobuf_time_formats_and_parses() {
        assert_eq!(
            format_time(0, 0, false).unwrap().as_str(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            format_time(1_700_000_000, 0, false).unwrap().as_str(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format_time(1_700_000_000, 5_000, true).unwrap().as_str(),
            "2023-11-14T22:13:20.000005Z"
        );
        assert_eq!(
            format_time(-1, 0, false).unwrap().as_str(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            format_time(1_700_000_000, 120_000_000, false)
                .unwrap()
                .as_str(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            (1_700_000_000, 0)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20.5+01:00").unwrap(),
            (1_700_000_000, 500_000_000)
        );
        assert!(parse_time("2023-11-14").is_err());
        assert!(parse_time("2023-13-14T22:13:20Z").is_err());
        assert!(parse_time("2023-11-14T22:1a:20Z").is_err());
        assert_eq!(
            parse_time("0000-01-01T00:00:00Z").unwrap().0,
            -62_167_219_200
        );
        assert_eq!(
            parse_time("9999-12-31T23:59:59Z").unwrap().0,
            253_402_300_799
        );
        assert!(format_time(i64::MAX, 0, false).is_err());
    }
}
