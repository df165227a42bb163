//! Decoding a transaction argument the way fabric-contract-api's JSON serializer does:
//! text for strings, `true`/`false` for booleans, JSON for everything else.

use serde::de::{self, Visitor};
use serde_json::Error;

/// A serde `Deserializer` over one raw argument.
pub(crate) struct ArgDeserializer<'a> {
    raw: &'a [u8],
}

impl<'a> ArgDeserializer<'a> {
    pub(crate) fn new(raw: &'a [u8]) -> Self {
        Self { raw }
    }

    fn json(&self) -> serde_json::Deserializer<serde_json::de::SliceRead<'a>> {
        serde_json::Deserializer::from_slice(self.raw)
    }

    fn text(&self) -> Result<&'a str, Error> {
        std::str::from_utf8(self.raw).map_err(|_| de::Error::custom("the argument is not UTF-8"))
    }
}

/// Forwards to serde_json over the raw bytes, then requires the end of the input.
macro_rules! forward_to_json {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Error> {
                let mut json = self.json();
                let value = de::Deserializer::$method(&mut json, $($arg,)* visitor)?;
                json.end()?;
                Ok(value)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for ArgDeserializer<'de> {
    type Error = Error;

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.text()?.trim().to_lowercase().as_str() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(de::Error::custom("expected true or false")),
        }
    }

    forward_to_json! {
        deserialize_any();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }
}
