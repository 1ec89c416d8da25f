//! How a job's answer (`result_json`) is stored: compressed (LZ4, with a fixed dictionary
//! that holds a typical Smile ID answer), because the answers of a run are nearly alike
//! and their common text is most of each row. A stored answer is a BLOB: one version
//! byte naming the dictionary, then the LZ4 block with its length prepended. A TEXT value
//! (a database written before answers were compressed) is read as it is.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// The version byte of answers compressed with [`DICTIONARY_1`].
const VERSION_1: u8 = 1;

/// The dictionary of version 1. Never change it: stored answers are read with it. A new
/// dictionary needs a new version byte (and this one kept for reading).
const DICTIONARY_1: &[u8] = br#"{"code":"2302","job_complete":true,"job_success":true,"result":{"Actions":{"DOB":"Exact Match","Gender":"Exact Match","ID_Verification":"Verified","Names":"Exact Match","Phone_Number":"Not Provided","Return_Personal_Info":"Returned","Selfie_To_ID_Authority_Compare":"Not Applicable","Verify_ID_Number":"Verified"},"IsFinalResult":"true","ResultCode":"1020","ResultText":"Enroll User","ResultType":"ID Verification","SmileJobID":"00000","Source":"NIBSS","Country":"NG","IDType":"BVN","ConfidenceValue":"100","PartnerParams":{"job_id":"","user_id":"","job_type":5},"FullName":"(removed)","DOB":"(removed)","IDNumber":"*******","PhoneNumber":"(removed)","Photo":"(removed)","Partial Match","No Match","Not Verified","Unverified","Approved","Rejected","Provisional"},"signature":"","timestamp":"2026-01-01T00:00:00.000Z"}"#;

/// An answer decompresses to at most this many bytes; a stored length above it is a
/// damaged value, refused before anything is allocated for it.
const MAX_DECODED: usize = 1 << 20;

/// A job's answer (JSON text), stored compressed.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer(pub String);

/// The stored form of `json`.
pub fn encode(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() / 2 + 8);
    out.push(VERSION_1);
    out.extend(lz4_flex::block::compress_prepend_size_with_dict(
        json.as_bytes(),
        DICTIONARY_1,
    ));
    out
}

/// The answer a stored value holds.
pub fn decode(stored: &[u8]) -> Result<String, String> {
    let Some((&version, block)) = stored.split_first() else {
        return Err("an empty stored answer".into());
    };
    if version != VERSION_1 {
        return Err(format!("a stored answer of unknown version {version}"));
    }
    let (size, rest) = lz4_flex::block::uncompressed_size(block)
        .map_err(|e| format!("a damaged stored answer: {e}"))?;
    if size > MAX_DECODED {
        return Err(format!("a damaged stored answer (it claims {size} bytes)"));
    }
    let bytes = lz4_flex::block::decompress_with_dict(rest, size, DICTIONARY_1)
        .map_err(|e| format!("a damaged stored answer: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "a stored answer that is not UTF-8 text".into())
}

impl ToSql for Answer {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(encode(&self.0).into()))
    }
}

impl FromSql for Answer {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| Answer(s.to_owned()))
                .map_err(|e| FromSqlError::Other(Box::new(e))),
            ValueRef::Blob(b) => decode(b)
                .map(Answer)
                .map_err(|e| FromSqlError::Other(e.into())),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_as_stored_and_smaller() {
        let answer = r#"{"code":"2302","job_complete":true,"job_success":true,"result":{"Actions":{"DOB":"Exact Match","Gender":"Exact Match","ID_Verification":"Verified","Names":"Exact Match","Phone_Number":"Exact Match","Return_Personal_Info":"Returned","Verify_ID_Number":"Verified"},"IsFinalResult":"true","ResultCode":"1020","ResultText":"Exact Match","ResultType":"ID Verification","SmileJobID":"0000000001","Source":"minimal server"},"signature":"hh3tJtI0BUEX9bUR6ruoHJ7kFbtCFqOrypNACSOP/ag=","timestamp":"2026-11-26T22:17:03.531Z"}"#;
        let stored = encode(answer);
        assert!(
            stored.len() * 3 < answer.len(),
            "{} of {}",
            stored.len(),
            answer.len()
        );
        assert_eq!(decode(&stored).unwrap(), answer);
        for text in ["", "{}", "not json at all", "ü€😀", &"x".repeat(100_000)] {
            assert_eq!(decode(&encode(text)).unwrap(), text);
        }
    }

    #[test]
    fn a_damaged_value_is_refused_not_trusted() {
        let stored = encode(r#"{"ResultCode":"1020"}"#);
        assert!(decode(&[]).is_err());
        assert!(decode(&[2, 0, 0]).unwrap_err().contains("version 2"));
        // A length far beyond any answer: refused before allocating it.
        assert!(
            decode(&[1, 0xff, 0xff, 0xff, 0x7f, 0])
                .unwrap_err()
                .contains("claims")
        );
        let mut cut = stored.clone();
        cut.truncate(stored.len() - 3);
        assert!(decode(&cut).is_err());
    }

    #[test]
    fn sqlite_text_and_blobs_both_read() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a)").unwrap();
        conn.execute("INSERT INTO t VALUES (?1)", [Answer("{\"x\":1}".into())])
            .unwrap();
        conn.execute("INSERT INTO t VALUES ('{\"y\":2}')", [])
            .unwrap();
        let got: Vec<Answer> = conn
            .prepare("SELECT a FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            got,
            [Answer("{\"x\":1}".into()), Answer("{\"y\":2}".into())]
        );
        let kind: String = conn
            .query_row("SELECT typeof(a) FROM t ORDER BY rowid", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kind, "blob");
    }
}
