//! The example answers in Smile ID's own pages (../shared/seeds, copied verbatim into
//! tests/fixtures/seedNNN_*.json) parse into our models without losing anything.

use smile_recon::api::codes::{self, Category};
use smile_recon::api::models::{JobResult, JobStatusResponse, SignedResult};

#[test]
fn seed000_job_status_response() {
    let text = include_str!("fixtures/seed000_job_status_response.json");
    let r: JobStatusResponse = serde_json::from_str(text).unwrap();
    assert_eq!(r.code, "2302");
    assert!(r.job_complete);
    assert_eq!(r.job_success, Some(true));
    assert_eq!(r.timestamp, "2018-03-13T21:04:11.193Z");
    let result = r.result.as_ref().unwrap().as_object().unwrap();
    assert_eq!(result.smile_job_id.as_deref(), Some("0000001897"));
    assert_eq!(result.confidence_value.as_deref(), Some("100"));
    let pp = result.partner_params.as_ref().unwrap();
    assert_eq!(pp.job_type.as_ref().unwrap().as_i64(), Some(4));
    let history = r.history.as_ref().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[1].result_code.as_deref(), Some("0814"));
    assert_eq!(
        codes::category_of(history[1].result_code.as_deref().unwrap()),
        Some(Category::ProvisionallyApproved)
    );
    // job_type as a string, extra partner params and extra result fields are kept
    assert_eq!(
        history[2]
            .partner_params
            .as_ref()
            .unwrap()
            .job_type
            .as_ref()
            .unwrap()
            .as_i64(),
        Some(1)
    );
    assert_eq!(history[2].extra["FullName"], "Peter Parker");
    assert!(
        history[0]
            .partner_params
            .as_ref()
            .unwrap()
            .extra
            .contains_key("optional_info")
    );
    assert_eq!(
        r.image_links.as_ref().unwrap()["selfie_image"]
            .as_str()
            .map(|s| s.starts_with("https://")),
        Some(true)
    );
    round_trips::<JobStatusResponse>(text);
}

#[test]
fn seed002_job_status_with_history() {
    let text = include_str!("fixtures/seed002_job_status_with_history.json");
    let r: JobStatusResponse = serde_json::from_str(text).unwrap();
    assert_eq!(r.code, "2302");
    assert_eq!(r.result_code(), Some("0810"));
    let result = r.result.as_ref().unwrap().as_object().unwrap();
    assert_eq!(result.action("Verify_ID_Number"), Some("Verified"));
    assert_eq!(result.is_final_result.as_deref(), Some("true"));
    assert_eq!(result.extra["JSONVersion"], "1.0.0");
    assert_eq!(r.history.as_ref().unwrap().len(), 1);
    round_trips::<JobStatusResponse>(text);
}

#[test]
fn seed004_verify_response() {
    let text = include_str!("fixtures/seed004_verify_response.json");
    let r: SignedResult = serde_json::from_str(text).unwrap();
    assert_eq!(r.timestamp, "2021-08-12T17:57:00.614879");
    assert_eq!(r.result.result_code.as_deref(), Some("1020"));
    assert_eq!(r.result.result_text.as_deref(), Some("Exact Match"));
    assert_eq!(r.result.action("Names"), Some("Exact Match"));
    assert_eq!(r.result.action("ID_Verification"), Some("Exact Match"));
    assert_eq!(
        r.result
            .partner_params
            .as_ref()
            .unwrap()
            .job_type
            .as_ref()
            .unwrap()
            .as_i64(),
        Some(5)
    );
    assert_eq!(r.result.source.as_deref(), Some("ID Verificaiton"));
    round_trips::<SignedResult>(text);
}

#[test]
fn a_string_result_with_code_2314() {
    let text = r#"{"timestamp":"2026-01-01T00:00:00.000Z","signature":"x","job_complete":false,"job_success":false,"code":"2314","result":"No zip file received"}"#;
    let r: JobStatusResponse = serde_json::from_str(text).unwrap();
    assert!(!r.job_complete);
    assert_eq!(
        r.result,
        Some(JobResult::Text("No zip file received".into()))
    );
    assert_eq!(r.result_code(), None);
    // An error in a signed answer, not "still pending": the job ends in error.
    assert_eq!(
        codes::lookup(&r.code).unwrap().class,
        codes::RetryClass::Permanent
    );
}

#[test]
fn a_response_without_signature_is_refused() {
    let text = r#"{"timestamp":"t","job_complete":true,"code":"2302"}"#;
    assert!(serde_json::from_str::<JobStatusResponse>(text).is_err());
    let text = r#"{"signature":"s","job_complete":true,"code":"2302"}"#;
    assert!(serde_json::from_str::<JobStatusResponse>(text).is_err());
}

/// Parsing and writing back loses no field.
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str) {
    let original: serde_json::Value = serde_json::from_str(text).unwrap();
    let parsed: T = serde_json::from_str(text).unwrap();
    let back = serde_json::to_value(&parsed).unwrap();
    assert_eq!(back, original);
}
