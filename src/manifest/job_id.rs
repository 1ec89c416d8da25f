//! job_ids for manifests without one: derived from the run's salt and the row, so the
//! same row of the same run always gets the same id (a resumed run never invents a new
//! job for a row the server already accepted).

use sha2::{Digest, Sha256};

pub fn derive_job_id(salt: &str, line: i64, user_id: &str, id_number: &str) -> String {
    let mut hash = Sha256::new();
    for part in [salt, &line.to_string(), user_id, id_number] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    let digest = hex::encode(hash.finalize());
    format!("sr-{}", &digest[..24])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_distinct() {
        let a = derive_job_id("run:1:5", 2, "u1", "123");
        assert_eq!(a, derive_job_id("run:1:5", 2, "u1", "123"));
        assert_eq!(a.len(), 27);
        assert!(a.starts_with("sr-"));
        assert_ne!(a, derive_job_id("run:1:5", 3, "u1", "123"));
        assert_ne!(a, derive_job_id("run:2:5", 2, "u1", "123"));
        // the separator keeps ("u1", "23") apart from ("u12", "3")
        assert_ne!(
            derive_job_id("s", 2, "u1", "23"),
            derive_job_id("s", 2, "u12", "3")
        );
    }
}
