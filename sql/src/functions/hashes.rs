//! Flink's hash functions: `MD5`, `SHA1`, `SHA224`, `SHA256`, `SHA384`,
//! `SHA512` and `SHA2(text, bits)`, each the digest of the text's UTF-8
//! bytes as a STRING of lowercase hexadecimal digits (32, 40, 56, 64, 96,
//! 128). DataFusion's namesakes return BINARY (and are not built into
//! Weir: its crypto feature is off), so Flink users' `WHERE MD5(x) = '…'`
//! and hex-keyed joins need these.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BinaryArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use sha2::Digest;

use super::date_format::is_text;

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Algorithm {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    /// The SHA-2 algorithm of a `SHA2` bit length, if it is one.
    fn sha2(bits: i64) -> Option<Self> {
        Some(match bits {
            224 => Self::Sha224,
            256 => Self::Sha256,
            384 => Self::Sha384,
            512 => Self::Sha512,
            _ => return None,
        })
    }

    /// Appends the hex digest of `bytes` to `out`'s current value.
    fn write_hex(self, bytes: &[u8], out: &mut StringBuilder) -> std::fmt::Result {
        match self {
            Self::Md5 => hex(&md5::Md5::digest(bytes), out),
            Self::Sha1 => hex(&sha1::Sha1::digest(bytes), out),
            Self::Sha224 => hex(&sha2::Sha224::digest(bytes), out),
            Self::Sha256 => hex(&sha2::Sha256::digest(bytes), out),
            Self::Sha384 => hex(&sha2::Sha384::digest(bytes), out),
            Self::Sha512 => hex(&sha2::Sha512::digest(bytes), out),
        }
    }
}

/// `digest` as lowercase hex digits (Flink's `EncodingUtils.hex`), written
/// straight into the builder: no row allocates.
fn hex(digest: &[u8], out: &mut StringBuilder) -> std::fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in digest {
        out.write_char(char::from(DIGITS[usize::from(b >> 4)]))?;
        out.write_char(char::from(DIGITS[usize::from(b & 0xf)]))?;
    }
    Ok(())
}

/// The functions of one algorithm each, to register.
pub(super) fn functions() -> Vec<ScalarUDF> {
    let fixed = |name, algorithm| {
        ScalarUDF::from(Hash { name, algorithm, signature: Signature::any(1, Volatility::Immutable) })
    };
    vec![
        fixed("md5", Algorithm::Md5),
        fixed("sha1", Algorithm::Sha1),
        fixed("sha224", Algorithm::Sha224),
        fixed("sha256", Algorithm::Sha256),
        fixed("sha384", Algorithm::Sha384),
        fixed("sha512", Algorithm::Sha512),
        ScalarUDF::from(Sha2 { signature: Signature::any(2, Volatility::Immutable) }),
    ]
}

/// Whether a value of type `t` is hashed (its UTF-8 bytes, or its bytes).
fn hashable(t: &DataType) -> bool {
    is_text(t) || matches!(t, DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
}

/// The bytes of a hashed argument: text as UTF-8, binary as it is.
fn bytes_of(value: &ColumnarValue, rows: usize) -> Result<BinaryArray> {
    Ok(cast(&value.to_array(rows)?, &DataType::Binary)?.as_binary::<i32>().clone())
}

/// `MD5(text)`, `SHA1(text)`, `SHA224(text)` … `SHA512(text)`: the digest as
/// hex; NULL for NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Hash {
    name: &'static str,
    algorithm: Algorithm,
    signature: Signature,
}

impl ScalarUDFImpl for Hash {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !hashable(&args[0]) {
            return plan_err!("{} takes a string (argument 1), not {}", self.name.to_uppercase(), args[0]);
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = bytes_of(&args.args[0], args.number_rows)?;
        let mut out = StringBuilder::with_capacity(bytes.len(), bytes.len() * 64);
        for value in bytes.iter() {
            match value {
                Some(b) => {
                    self.algorithm.write_hex(b, &mut out).map_err(|e| {
                        datafusion::common::DataFusionError::Execution(format!("{}: {e}", self.name.to_uppercase()))
                    })?;
                    out.append_value("");
                }
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `SHA2(text, bits)`: SHA-224, SHA-256, SHA-384 or SHA-512 by the bit
/// length; NULL when either is NULL. Any other length is an error, as in
/// Flink (whose digest lookup fails).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sha2 {
    signature: Signature,
}

impl ScalarUDFImpl for Sha2 {
    fn name(&self) -> &str {
        "sha2"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !hashable(&args[0]) {
            return plan_err!("SHA2 takes a string (argument 1), not {}", args[0]);
        }
        if !(args[1].is_integer() || args[1] == DataType::Null) {
            return plan_err!("SHA2 takes an integer bit length (argument 2), not {}", args[1]);
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let bytes = bytes_of(&args.args[0], rows)?;
        let bits = cast(&args.args[1].to_array(rows)?, &DataType::Int64)?;
        let bits = bits.as_primitive::<Int64Type>();
        let mut out = StringBuilder::with_capacity(rows, rows * 64);
        for row in 0..rows {
            if bytes.is_null(row) || bits.is_null(row) {
                out.append_null();
                continue;
            }
            let Some(algorithm) = Algorithm::sha2(bits.value(row)) else {
                return exec_err!(
                    "SHA2: the bit length (argument 2) must be 224, 256, 384 or 512, not {}",
                    bits.value(row)
                );
            };
            if let Err(e) = algorithm.write_hex(bytes.value(row), &mut out) {
                return exec_err!("SHA2: {e}");
            }
            out.append_value("");
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};

    /// Digests of "abc" and "" from the algorithms' standards (RFC 1321,
    /// FIPS 180-4's examples), as hex: Flink's docs say "a string of 32
    /// (40, 56, 64, 96, 128) hexadecimal digits; returns NULL if string is
    /// NULL".
    #[tokio::test]
    async fn digests_are_hex_strings() {
        assert_eq!(query("SELECT MD5('abc')").await, ["900150983cd24fb0d6963f7d28e17f72"]);
        assert_eq!(query("SELECT MD5('')").await, ["d41d8cd98f00b204e9800998ecf8427e"]);
        assert_eq!(query("SELECT SHA1('abc')").await, ["a9993e364706816aba3e25717850c26c9cd0d89d"]);
        assert_eq!(query("SELECT SHA224('abc')").await, ["23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"]);
        let sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(query("SELECT SHA256('abc')").await, [sha256]);
        assert_eq!(
            query("SELECT SHA384('abc')").await,
            ["cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"]
        );
        let sha512 = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                      2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
        assert_eq!(query("SELECT SHA512('abc')").await, [sha512]);
        assert_eq!(query("SELECT SHA2('abc', 256)").await, [sha256]);
        assert_eq!(query("SELECT SHA2('abc', 512)").await, [sha512]);
        assert_eq!(
            query("SELECT SHA1(s) FROM (VALUES ('abc'), (NULL)) t(s)").await,
            ["a9993e364706816aba3e25717850c26c9cd0d89d", "NULL"]
        );
        assert_eq!(query("SELECT SHA2('abc', CAST(NULL AS INT))").await, ["NULL"]);
        assert_eq!(query("SELECT arrow_typeof(SHA256('abc'))").await, ["Utf8"]);
    }

    #[tokio::test]
    async fn bad_arguments_are_errors_naming_them() {
        let e = query_err("SELECT SHA2('abc', 100)").await;
        assert!(e.contains("SHA2") && e.contains("argument 2") && e.contains("100"), "{e}");
        let e = query_err("SELECT SHA256(1)").await;
        assert!(e.contains("SHA256") && e.contains("argument 1"), "{e}");
    }
}
