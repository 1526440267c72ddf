//! Value encoding for everything the store writes to sled: one version byte,
//! then bincode 2 (serde path, standard varint config). Bumping `VERSION`
//! makes old values fail loudly instead of decoding into garbage.

use serde::Serialize;
use serde::de::DeserializeOwned;

const VERSION: u8 = 1;
const CONFIG: bincode::config::Configuration = bincode::config::standard();

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VERSION];
    // Encoding plain structs and enums into a Vec cannot fail.
    bincode::serde::encode_into_std_write(value, &mut out, CONFIG)
        .expect("bincode encodes into a Vec");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => bincode::serde::decode_from_slice(rest, CONFIG)
            .map(|(v, _)| v)
            .map_err(|e| format!("undecodable value: {e}")),
        Some((v, _)) => Err(format!("unknown value version {v}")),
        None => Err("empty value".to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_version_check() {
        let v = (7u32, 1.5f64, Some("x".to_string()));
        let bytes = super::encode(&v);
        assert_eq!(super::decode::<(u32, f64, Option<String>)>(&bytes), Ok(v));
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(super::decode::<(u32, f64, Option<String>)>(&bad).is_err());
        assert!(super::decode::<u32>(&[]).is_err());
    }
}
