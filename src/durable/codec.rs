//! Integers and records as bytes.
//!
//! Every integer inside a turn is a LEB128 varint: seven bits per byte, the least significant
//! group first, the high bit set on every byte but the last. That is the encoding postcard gives
//! serde's integers, so one rule covers a whole payload, ours and the records' alike. Signed
//! values are zigzag-mapped first (0, -1, 1, -2, … to 0, 1, 2, 3, …), so a small magnitude stays
//! short whatever its sign.
//!
//! Records go through serde into postcard ([`put_record`]), appended to the turn's own buffer:
//! encoding allocates nothing per record. Reading is a [`Cursor`] that refuses anything
//! malformed with a reason, never a panic: a payload whose checksum holds can still have been
//! written by a buggy or foreign writer.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The longest varint of a `u64`: 64 bits in groups of 7.
const MAX_VARINT: usize = 10;

/// Appends `value` as a varint.
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push(value as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Maps a signed value to an unsigned one whose varint is as short as the magnitude allows.
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

/// Appends `record` in postcard's format.
pub(crate) fn put_record<R: Serialize + ?Sized>(buf: &mut Vec<u8>, record: &R) -> postcard::Result<()> {
    postcard::serialize_with_flavor(record, Append(buf))
}

/// A postcard output that appends to a buffer we own (postcard's own `Vec` flavors make a new
/// vector per value).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Reads back what the `put_` functions wrote.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// Bytes read so far.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// Reads a varint.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for (i, &byte) in self.bytes[self.at..].iter().take(MAX_VARINT).enumerate() {
            let group = u64::from(byte & 0x7f);
            // The tenth byte holds the 64th bit alone.
            if i == MAX_VARINT - 1 && group > 1 {
                return Err(format!("a varint at byte {} overflows 64 bits", self.at));
            }
            value |= group << (7 * i);
            if byte & 0x80 == 0 {
                self.at += i + 1;
                return Ok(value);
            }
        }
        Err(format!("a varint at byte {} runs past the end", self.at))
    }

    /// Reads a varint that must fit a `u32`.
    #[inline]
    pub(crate) fn varint_u32(&mut self) -> Result<u32, String> {
        let at = self.at;
        let value = self.varint()?;
        u32::try_from(value).map_err(|_| format!("the value {value} at byte {at} is over u32::MAX"))
    }

    /// Reads `len` bytes.
    pub(crate) fn bytes(&mut self, len: u64) -> Result<&'a [u8], String> {
        match usize::try_from(len) {
            Ok(len) if len <= self.remaining() => {
                let bytes = &self.bytes[self.at..self.at + len];
                self.at += len;
                Ok(bytes)
            }
            _ => Err(format!("{len} bytes at byte {} run past the end", self.at)),
        }
    }

    /// Reads a record in postcard's format.
    #[inline]
    pub(crate) fn record<R: DeserializeOwned>(&mut self) -> Result<R, String> {
        match postcard::take_from_bytes(&self.bytes[self.at..]) {
            Ok((record, rest)) => {
                self.at = self.bytes.len() - rest.len();
                Ok(record)
            }
            Err(error) => Err(format!("the record at byte {} does not decode: {error}", self.at)),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(values in proptest::collection::vec(any::<u64>(), 0..50)) {
            let mut buf = Vec::new();
            for &value in &values {
                put_varint(&mut buf, value);
            }
            let mut cursor = Cursor::new(&buf);
            for &value in &values {
                prop_assert_eq!(cursor.varint(), Ok(value));
            }
            prop_assert_eq!(cursor.remaining(), 0);
        }

        #[test]
        fn zigzag_round_trips(value in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(value)), value);
        }

        /// Whatever the bytes, reading returns a value or a reason: never a panic.
        #[test]
        fn any_bytes_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut cursor = Cursor::new(&bytes);
            while cursor.remaining() > 0 {
                let step = cursor.position();
                let read = match step % 3 {
                    0 => cursor.varint().map(drop),
                    1 => cursor.record::<(String, i64)>().map(drop),
                    _ => cursor.bytes(3).map(drop),
                };
                if read.is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn small_values_are_short() {
        for (value, len) in [(0u64, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (u64::MAX, 10)] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), len, "{value}");
        }
        assert_eq!([zigzag(0), zigzag(-1), zigzag(1), zigzag(-2), zigzag(i64::MIN)], [0, 1, 2, 3, u64::MAX]);
    }

    #[test]
    fn overlong_and_cut_varints_are_refused() {
        assert!(Cursor::new(&[0xff; 11]).varint().is_err(), "eleven bytes");
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02); // a 65th bit
        assert!(Cursor::new(&too_big).varint().is_err());
        assert!(Cursor::new(&[0x80, 0x80]).varint().is_err(), "cut short");
        assert!(Cursor::new(&[0x80, 0x80, 0x80, 0x80, 0x10]).varint_u32().is_err(), "2^32");
    }

    #[test]
    fn records_append_to_the_buffer() -> postcard::Result<()> {
        let mut buf = vec![0xaa];
        put_record(&mut buf, &-2i64)?;
        put_record(&mut buf, &(String::from("k"), 300u64))?;
        put_record(&mut buf, &vec![1u8, 2])?;
        // postcard: zigzag varint; a string is its length and bytes; a u64 a varint.
        assert_eq!(buf, [0xaa, 0x03, 0x01, b'k', 0xac, 0x02, 0x02, 1, 2]);
        let mut cursor = Cursor::new(&buf[1..]);
        assert_eq!(cursor.record::<i64>(), Ok(-2));
        assert_eq!(cursor.record::<(String, u64)>(), Ok(("k".to_owned(), 300)));
        assert_eq!(cursor.record::<Vec<u8>>(), Ok(vec![1, 2]));
        assert_eq!(cursor.remaining(), 0);
        Ok(())
    }
}
