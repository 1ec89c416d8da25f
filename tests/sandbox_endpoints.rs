//! The sandbox over real HTTP: every endpoint, every error code it documents, signatures on
//! every answer and callback.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use smile_recon::api::models::{IdInfo, PartnerParams};
use smile_recon::api::{ClientConfig, SmileClient, SubmitEndpoint, SubmitReply};
use smile_recon::sandbox::PreloadedJob;

const SUBMIT_PATHS: [&str; 4] = [
    "/v2/verify",
    "/v2/verify_async",
    "/v1/id_verification",
    "/v1/async_id_verification",
];

fn with_callback(mut body: Value, url: &str) -> Value {
    body["callback_url"] = json!(url);
    body
}

#[tokio::test]
async fn sync_verify_answers_seed_004_shape_signed() {
    let sb = start(config()).await;
    let p = registry().people()[0].clone();
    let a = post(&sb, "/v2/verify", &verify_body(&p, "u1", "j1")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.confirms(), "the answer is signed with the partner's key");
    let v = a.json();
    assert_eq!(v["ResultCode"], "1020");
    assert_eq!(v["ResultText"], "Exact Match");
    assert_eq!(v["ResultType"], "ID Verification");
    assert_eq!(v["IsFinalResult"], "true");
    assert_eq!(v["JSONVersion"], "1.0.0");
    assert!(v["SmileJobID"].is_string());
    assert_eq!(v["PartnerParams"]["job_id"], "j1");
    assert_eq!(v["PartnerParams"]["user_id"], "u1");
    assert_eq!(v["PartnerParams"]["job_type"], 5);
    let actions = &v["Actions"];
    for (k, want) in [
        ("Return_Personal_Info", "Not Applicable"),
        ("Verify_ID_Number", "Verified"),
        ("Names", "Exact Match"),
        ("DOB", "Exact Match"),
        ("Gender", "Exact Match"),
        ("Phone_Number", "Exact Match"),
        ("ID_Verification", "Exact Match"),
    ] {
        assert_eq!(actions[k], want, "{k}");
    }
    // Two answers, two fresh timestamps (millisecond resolution: a moment apart).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let b = post(&sb, "/v1/job_status", &status_body("u1", "j1")).await;
    assert!(b.confirms());
    assert_ne!(b.json()["timestamp"], v["timestamp"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn partial_transposed_and_no_match_results() {
    let sb = start(config()).await;
    let p = registry().people()[1].clone();
    let mut partial = verify_body(&p, "u", "partial");
    partial["first_name"] = json!(format!("{}x", p.first_name));
    let v = post(&sb, "/v2/verify", &partial).await.json();
    assert_eq!(
        (v["ResultCode"].as_str(), v["Actions"]["Names"].as_str()),
        (Some("1021"), Some("Partial Match"))
    );
    let mut swapped = verify_body(&p, "u", "swapped");
    swapped["first_name"] = json!(p.last_name);
    swapped["last_name"] = json!(p.first_name);
    let v = post(&sb, "/v2/verify", &swapped).await.json();
    assert_eq!(
        (v["ResultCode"].as_str(), v["Actions"]["Names"].as_str()),
        (Some("1021"), Some("Transposed"))
    );
    let mut other = verify_body(&p, "u", "other");
    other["gender"] = json!(if p.gender == "M" { "F" } else { "M" });
    let v = post(&sb, "/v2/verify", &other).await.json();
    assert_eq!(v["ResultCode"], "1022");
    assert_eq!(v["ResultText"], "No Match");
    assert_eq!(v["Actions"]["Gender"], "No Match");
    let mut bare = verify_body(&p, "u", "bare");
    for k in ["dob", "gender", "phone_number"] {
        bare.as_object_mut().unwrap().remove(k);
    }
    let v = post(&sb, "/v2/verify", &bare).await.json();
    assert_eq!(v["ResultCode"], "1020");
    assert_eq!(v["Actions"]["DOB"], "Not Provided");
    sb.shutdown().await;
}

#[tokio::test]
async fn unknown_id_is_1013_and_malformed_id_is_1014_without_a_job() {
    let sb = start(config()).await;
    let p = registry().people()[2].clone();
    let mut unknown = verify_body(&p, "u", "unknown");
    let other = smile_recon::sandbox::Registry::generate(60, 8).people()[2].clone();
    unknown["id_number"] = json!(other.id_number);
    let a = post(&sb, "/v2/verify", &unknown).await;
    let v = a.json();
    assert_eq!(v["ResultCode"], "1013");
    assert_eq!(v["Actions"]["Verify_ID_Number"], "Not Verified");
    assert!(v["SmileJobID"].is_string(), "1013 is a result, with a job");
    assert!(a.confirms());

    let mut bad = verify_body(&p, "u", "bad");
    bad["id_number"] = json!(format!("{}-", p.id_number));
    let a = post(&sb, "/v2/verify", &bad).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.confirms());
    let v = a.json();
    assert_eq!(v["ResultCode"], "1014");
    assert!(
        v.get("SmileJobID").is_none(),
        "error-coded results have no SmileJobID"
    );
    // No job was created: job_status does not know it, and the same job_id may be sent again.
    let s = post(&sb, "/v1/job_status", &status_body("u", "bad")).await;
    assert_eq!(
        (s.status, s.code().as_str()),
        (StatusCode::NOT_FOUND, "2304")
    );
    let again = post(&sb, "/v2/verify", &verify_body(&p, "u", "bad"))
        .await
        .json();
    assert_eq!(again["ResultCode"], "1020");
    let stats = sb.stats();
    assert_eq!(stats.results("1014"), 1);
    assert_eq!(stats.accepted("bad"), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn enhanced_kyc_returns_1012_with_personal_info_or_1013() {
    let sb = start(config()).await;
    let p = registry().people()[3].clone();
    let body = signed(json!({
        "country": p.country, "id_type": p.id_type, "id_number": p.id_number,
        "partner_params": {"user_id": "u", "job_id": "ekyc", "job_type": 5}
    }));
    let a = post(&sb, "/v1/id_verification", &body).await;
    assert!(a.confirms());
    let v = a.json();
    assert_eq!(v["ResultCode"], "1012");
    assert_eq!(v["ResultText"], "ID Validated");
    assert_eq!(v["FullName"], json!(p.full_name()));
    assert_eq!(v["DOB"], json!(p.dob));
    assert_eq!(v["Gender"], json!(p.gender));
    assert_eq!(v["PhoneNumber"], json!(p.phone_number));
    assert_eq!(v["IDType"], json!(p.id_type));
    assert_eq!(v["IDNumber"], json!(p.id_number));
    assert!(v["Country"].is_string());
    assert_eq!(v["Actions"]["Return_Personal_Info"], "Returned");
    let mut missing = body.clone();
    missing["id_number"] =
        json!(smile_recon::sandbox::Registry::generate(60, 9).people()[3].id_number);
    missing["partner_params"]["job_id"] = json!("ekyc2");
    let v = post(&sb, "/v1/id_verification", &signed(missing))
        .await
        .json();
    assert_eq!(v["ResultCode"], "1013");
    sb.shutdown().await;
}

#[tokio::test]
async fn bad_or_missing_signature_is_2205_with_http_401_everywhere() {
    let sb = start(config()).await;
    let p = registry().people()[0].clone();
    for path in SUBMIT_PATHS
        .iter()
        .chain(&["/v1/id_number_rate_limit_reset"])
    {
        let good = with_callback(verify_body(&p, "u", "sig"), "http://127.0.0.1:9/cb");
        let mut wrong = good.clone();
        wrong["signature"] = json!(creds().sign("2000-01-01T00:00:00Z"));
        let mut absent = good.clone();
        absent.as_object_mut().unwrap().remove("signature");
        let mut other_partner = good.clone();
        other_partner["partner_id"] = json!("003");
        for body in [wrong, absent, other_partner] {
            let a = post(&sb, path, &body).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}: {}", a.text);
            assert_eq!(a.code(), "2205", "{path}");
        }
    }
    // job_status speaks its own documented family: 2305 for a bad signature.
    let mut body = status_body("u", "j");
    body["signature"] = json!("AAAA");
    let a = post(&sb, "/v1/job_status", &body).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::UNAUTHORIZED, "2305")
    );
    assert_eq!(sb.stats().accepted_submissions, 0, "nothing was processed");
    sb.shutdown().await;
}

#[tokio::test]
async fn invalid_json_is_2203_and_2303_for_job_status() {
    let sb = start(config()).await;
    for path in SUBMIT_PATHS
        .iter()
        .chain(&["/v1/id_number_rate_limit_reset"])
    {
        for bad in ["{", "not json", "[1,2]", ""] {
            let a = post_bytes(&sb, path, bad).await;
            assert_eq!(
                (a.status, a.code().as_str()),
                (StatusCode::BAD_REQUEST, "2203"),
                "{path} {bad:?}"
            );
        }
    }
    let a = post_bytes(&sb, "/v1/job_status", "{\"user_id\":").await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::BAD_REQUEST, "2303")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn wrong_types_are_2204() {
    let sb = start(config()).await;
    let p = registry().people()[0].clone();
    let cases: Vec<(&str, Value)> = vec![
        ("first_name", json!(12)),
        ("id_number", json!(12345678901u64)),
        ("dob", json!(["1990-01-01"])),
        ("partner_params", json!("u/j")),
    ];
    for path in SUBMIT_PATHS {
        for (field, value) in &cases {
            let mut body = with_callback(verify_body(&p, "u", "types"), "http://127.0.0.1:9/cb");
            body[*field] = value.clone();
            let a = post(&sb, path, &signed(body)).await;
            assert_eq!(
                (a.status, a.code().as_str()),
                (StatusCode::BAD_REQUEST, "2204"),
                "{path} {field}"
            );
        }
        let mut body = with_callback(verify_body(&p, "u", "types"), "http://127.0.0.1:9/cb");
        body["partner_params"]["job_id"] = json!(17);
        assert_eq!(post(&sb, path, &signed(body)).await.code(), "2204");
    }
    let mut body = status_body("u", "j");
    body["history"] = json!({"yes": true});
    assert_eq!(post(&sb, "/v1/job_status", &body).await.code(), "2204");
    sb.shutdown().await;
}

#[tokio::test]
async fn missing_fields_are_2213_and_2313_for_job_status() {
    let sb = start(config()).await;
    let p = registry().people()[0].clone();
    for path in SUBMIT_PATHS {
        let enhanced = path.starts_with("/v1/");
        let mut fields = vec!["country", "id_type", "id_number", "partner_params"];
        if !enhanced {
            fields.extend(["first_name", "last_name"]);
        }
        for field in fields {
            let mut body = with_callback(verify_body(&p, "u", "gaps"), "http://127.0.0.1:9/cb");
            body.as_object_mut().unwrap().remove(field);
            let a = post(&sb, path, &signed(body)).await;
            assert_eq!(
                (a.status, a.code().as_str()),
                (StatusCode::BAD_REQUEST, "2213"),
                "{path} {field}"
            );
        }
        for field in ["job_id", "user_id"] {
            let mut body = with_callback(verify_body(&p, "u", "gaps"), "http://127.0.0.1:9/cb");
            body["partner_params"]
                .as_object_mut()
                .unwrap()
                .remove(field);
            assert_eq!(
                post(&sb, path, &signed(body)).await.code(),
                "2213",
                "{path} {field}"
            );
        }
    }
    for path in ["/v2/verify_async", "/v1/async_id_verification"] {
        let a = post(&sb, path, &verify_body(&p, "u", "nocb")).await;
        assert_eq!(a.code(), "2213", "{path} without callback_url");
        assert!(a.text.contains("callback_url"));
    }
    let a = post(&sb, "/v1/job_status", &signed(json!({"user_id": "u"}))).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::BAD_REQUEST, "2313")
    );
    let a = post(
        &sb,
        "/v1/id_number_rate_limit_reset",
        &signed(json!({"id_type": "BVN"})),
    )
    .await;
    assert_eq!(a.code(), "2213");
    assert_eq!(sb.stats().accepted_submissions, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn job_type_other_than_5_is_2212() {
    let sb = start(config()).await;
    let p = registry().people()[0].clone();
    let mut body = verify_body(&p, "u", "jt");
    body["partner_params"]["job_type"] = json!(1);
    let a = post(&sb, "/v2/verify", &signed(body)).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::BAD_REQUEST, "2212")
    );
    let mut body = verify_body(&p, "u", "jt");
    body["partner_params"]["job_type"] = json!("5");
    assert_eq!(
        post(&sb, "/v2/verify", &signed(body)).await.json()["ResultCode"],
        "1020"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_second_submission_of_a_job_id_is_2215_on_every_endpoint() {
    let sb = start(config()).await;
    let rx = receiver(0).await;
    let p = registry().people()[4].clone();
    let first = post(&sb, "/v2/verify", &verify_body(&p, "u", "dup")).await;
    assert_eq!(first.json()["ResultCode"], "1020");
    for path in SUBMIT_PATHS {
        let body = with_callback(verify_body(&p, "u", "dup"), &rx.url());
        let a = post(&sb, path, &body).await;
        assert_eq!(
            (a.status, a.code().as_str()),
            (StatusCode::BAD_REQUEST, "2215"),
            "{path}"
        );
    }
    // An async job holds its job_id from the moment it is accepted.
    let ok = post(
        &sb,
        "/v2/verify_async",
        &with_callback(verify_body(&p, "u", "dup2"), &rx.url()),
    )
    .await;
    assert_eq!(ok.json(), json!({"success": true}));
    let again = post(&sb, "/v2/verify", &verify_body(&p, "u", "dup2")).await;
    assert_eq!(again.code(), "2215");
    let s = sb.stats();
    assert_eq!(s.duplicate_rejections, 5);
    assert_eq!(s.accepted("dup"), 1);
    assert_eq!(s.accepted("dup2"), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_per_id_limit_is_2222_with_429_until_reset_or_window_end() {
    let mut c = config();
    c.id_limit = 3;
    let sb = start(c).await;
    let p = registry().people()[5].clone();
    for i in 0..3 {
        let a = post(&sb, "/v2/verify", &verify_body(&p, "u", &format!("lim{i}"))).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let a = post(&sb, "/v1/id_verification", &verify_body(&p, "u", "lim3")).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "2222")
    );
    let wait: u64 = a.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(
        wait > 3 * 24 * 3600 - 60,
        "Retry-After says when the window frees: {wait}"
    );
    // Refused requests do not count; another ID number is not affected.
    let q = registry().people()[6].clone();
    assert_eq!(
        post(&sb, "/v2/verify", &verify_body(&q, "u", "other"))
            .await
            .status,
        StatusCode::OK
    );

    let reset = |number: &str| {
        signed(json!({"country": p.country, "id_type": p.id_type, "id_number": number}))
    };
    let mut unsigned = reset(&p.id_number);
    unsigned["signature"] = json!("nope");
    assert_eq!(
        post(&sb, "/v1/id_number_rate_limit_reset", &unsigned)
            .await
            .code(),
        "2205"
    );
    let r = post(&sb, "/v1/id_number_rate_limit_reset", &reset(&p.id_number)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.confirms());
    assert_eq!(r.json()["cleared"], true);
    let a = post(&sb, "/v2/verify", &verify_body(&p, "u", "lim3")).await;
    assert_eq!(
        a.json()["ResultCode"],
        "1020",
        "the reset cleared the block"
    );
    assert_eq!(sb.stats().id_limit_rejections, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_per_id_window_is_rolling() {
    let mut c = config();
    c.id_limit = 1;
    c.id_limit_window = Duration::from_millis(300);
    let sb = start(c).await;
    let p = registry().people()[7].clone();
    assert_eq!(
        post(&sb, "/v2/verify", &verify_body(&p, "u", "w1"))
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        post(&sb, "/v2/verify", &verify_body(&p, "u", "w2"))
            .await
            .status,
        StatusCode::OK
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn async_job_is_pending_then_complete_and_its_callback_is_signed() {
    let mut c = config();
    c.callback_delay = Duration::from_millis(400);
    let sb = start(c).await;
    let rx = receiver(0).await;
    let p = registry().people()[8].clone();
    let a = post(
        &sb,
        "/v2/verify_async",
        &with_callback(verify_body(&p, "ua", "async1"), &rx.url()),
    )
    .await;
    assert_eq!(
        (a.status, a.json()),
        (StatusCode::OK, json!({"success": true}))
    );
    let s = post(&sb, "/v1/job_status", &status_body("ua", "async1")).await;
    assert!(s.confirms());
    let v = s.json();
    assert_eq!(
        (v["code"].as_str(), v["job_complete"].as_bool()),
        (Some("2302"), Some(false))
    );
    assert_eq!(v["job_success"], false);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let cb = &got[0];
    assert!(creds().confirm(
        cb["timestamp"].as_str().unwrap(),
        cb["signature"].as_str().unwrap()
    ));
    assert_eq!(cb["ResultCode"], "1020");
    assert_eq!(cb["PartnerParams"]["job_id"], "async1");
    let done = post(&sb, "/v1/job_status", &status_body("ua", "async1"))
        .await
        .json();
    assert_eq!(
        (
            done["job_complete"].as_bool(),
            done["job_success"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(done["result"]["SmileJobID"], cb["SmileJobID"]);
    assert_eq!(sb.stats().callbacks_delivered, 1);

    // Enhanced KYC async: the same path, a 1012 result.
    let body = with_callback(verify_body(&p, "ua", "async2"), &rx.url());
    assert_eq!(
        post(&sb, "/v1/async_id_verification", &body).await.json(),
        json!({"success": true})
    );
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1]["ResultCode"], "1012");
    sb.shutdown().await;
}

#[tokio::test]
async fn callbacks_are_retried_with_backoff_then_given_up() {
    let mut c = config();
    c.callback_delay = Duration::from_millis(10);
    c.callback_backoff = Duration::from_millis(20);
    c.callback_attempts = 4;
    let sb = start(c).await;
    let flaky = receiver(2).await;
    let p = registry().people()[9].clone();
    post(
        &sb,
        "/v2/verify_async",
        &with_callback(verify_body(&p, "u", "retry"), &flaky.url()),
    )
    .await;
    let got = flaky.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(flaky.hits(), 3, "two 500s, then delivered");

    let dead = receiver(usize::MAX).await;
    post(
        &sb,
        "/v2/verify_async",
        &with_callback(verify_body(&p, "u", "dead"), &dead.url()),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sb.stats().callbacks_failed == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = sb.stats();
    assert_eq!((s.callbacks_delivered, s.callbacks_failed), (1, 1));
    assert_eq!(dead.hits(), 4, "every attempt made");
    assert_eq!(s.callback_attempts, 3 + 4);
    // The job itself is complete: job_status is the safety net.
    let v = post(&sb, "/v1/job_status", &status_body("u", "dead"))
        .await
        .json();
    assert_eq!(v["job_complete"], true);
    sb.shutdown().await;
}

#[tokio::test]
async fn dropped_callbacks_leave_the_result_to_job_status() {
    let mut c = config();
    c.callback_delay = Duration::from_millis(10);
    c.faults.drop_callbacks = 1.0;
    let sb = start(c).await;
    let rx = receiver(0).await;
    let p = registry().people()[10].clone();
    post(
        &sb,
        "/v2/verify_async",
        &with_callback(verify_body(&p, "u", "drop"), &rx.url()),
    )
    .await;
    let v = wait_complete(&sb, "u", "drop", Duration::from_secs(5)).await;
    assert_eq!(v["job_complete"], true);
    assert_eq!(v["result"]["ResultCode"], "1020");
    let s = sb.stats();
    assert_eq!((s.callbacks_dropped, s.callback_attempts), (1, 0));
    assert_eq!(rx.hits(), 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn an_outage_is_1015_for_sync_calls_and_holds_async_jobs_until_it_ends() {
    let mut c = config();
    c.callback_delay = Duration::from_millis(10);
    c.faults.outage = Some(smile_recon::sandbox::Outage {
        start_after: Duration::ZERO,
        duration: Duration::from_millis(700),
    });
    let sb = start(c).await;
    let rx = receiver(0).await;
    let p = registry().people()[11].clone();
    let a = post(&sb, "/v2/verify", &verify_body(&p, "u", "out1")).await;
    assert!(a.confirms());
    let v = a.json();
    assert_eq!(v["ResultCode"], "1015");
    assert_eq!(v["Actions"]["Verify_ID_Number"], "Issuer Unavailable");
    assert!(v.get("SmileJobID").is_none());
    let e = post(&sb, "/v1/id_verification", &verify_body(&p, "u", "out2"))
        .await
        .json();
    assert_eq!(e["ResultCode"], "1015");

    post(
        &sb,
        "/v2/verify_async",
        &with_callback(verify_body(&p, "u", "out3"), &rx.url()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pending = post(&sb, "/v1/job_status", &status_body("u", "out3"))
        .await
        .json();
    assert_eq!(pending["job_complete"], false, "async waits out the outage");
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0]["ResultCode"], "1020");
    // After the outage, the sync job_id left free by 1015 is submitted again.
    let again = post(&sb, "/v2/verify", &verify_body(&p, "u", "out1"))
        .await
        .json();
    assert_eq!(again["ResultCode"], "1020");
    sb.shutdown().await;
}

#[tokio::test]
async fn job_status_history_and_image_links() {
    let sb = start(config()).await;
    let people = registry().people().to_vec();
    for (i, p) in people.iter().take(3).enumerate() {
        post(
            &sb,
            "/v2/verify",
            &verify_body(p, "hist-user", &format!("h{i}")),
        )
        .await;
    }
    post(
        &sb,
        "/v2/verify",
        &verify_body(&people[3], "someone-else", "h9"),
    )
    .await;
    let mut body = status_body("hist-user", "h1");
    body["history"] = json!(true);
    body["image_links"] = json!(true);
    let a = post(&sb, "/v1/job_status", &body).await;
    assert!(a.confirms());
    let v = a.json();
    let ids: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["PartnerParams"]["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["h0", "h1", "h2"], "all of this user's jobs, in order");
    assert!(v["image_links"].is_object());
    let plain = post(&sb, "/v1/job_status", &status_body("hist-user", "h1"))
        .await
        .json();
    assert!(plain.get("history").is_none() && plain.get("image_links").is_none());
    // Someone else's job_id under this user is not found.
    let a = post(&sb, "/v1/job_status", &status_body("hist-user", "h9")).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::NOT_FOUND, "2304")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn preloaded_jobs_are_pending_until_their_time() {
    let mut c = config();
    let p = registry().people()[12].clone();
    let id_info = IdInfo {
        country: p.country.clone(),
        id_type: p.id_type.clone(),
        id_number: p.id_number.clone(),
        first_name: Some(p.first_name.clone()),
        middle_name: None,
        last_name: Some(p.last_name.clone()),
        dob: None,
        gender: None,
        phone_number: None,
        bank_code: None,
    };
    c.preload = vec![
        PreloadedJob {
            user_id: "pu".into(),
            job_id: "ready".into(),
            id_info: id_info.clone(),
            enhanced: false,
            pending_for: Duration::ZERO,
        },
        PreloadedJob {
            user_id: "pu".into(),
            job_id: "later".into(),
            id_info,
            enhanced: false,
            pending_for: Duration::from_millis(400),
        },
    ];
    let sb = start(c).await;
    let ready = post(&sb, "/v1/job_status", &status_body("pu", "ready"))
        .await
        .json();
    assert_eq!(
        (
            ready["job_complete"].as_bool(),
            ready["result"]["ResultCode"].as_str()
        ),
        (Some(true), Some("1020"))
    );
    let later = post(&sb, "/v1/job_status", &status_body("pu", "later"))
        .await
        .json();
    assert_eq!(later["job_complete"], false);
    let later = wait_complete(&sb, "pu", "later", Duration::from_secs(5)).await;
    assert_eq!(later["result"]["ResultCode"], "1020");
    // A preloaded job_id is taken.
    assert_eq!(
        post(&sb, "/v2/verify", &verify_body(&p, "pu", "ready"))
            .await
            .code(),
        "2215"
    );
    assert_eq!(
        sb.stats().accepted_submissions,
        0,
        "preloaded jobs were not submitted here"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn services_lists_id_types_with_fields_and_regexes() {
    let sb = start(config()).await;
    let r = http()
        .get(format!("{}/v1/services", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    for f in smile_recon::api::id_formats::FORMATS {
        let t = &v["id_types"][f.country][f.id_type];
        assert_eq!(t["id_number_regex"].as_str(), f.pattern, "{f:?}");
        let fields: Vec<&str> = t["required_fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(fields.contains(&"id_number") && fields.contains(&"job_id"));
        let test = t["test_data"].as_str().unwrap();
        assert!(smile_recon::api::id_formats::check(f.country, f.id_type, test).is_ok());
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn injected_500s_are_html_and_nothing_is_processed() {
    let mut c = config();
    c.faults.fail_rate = 1.0;
    let sb = start(c).await;
    let p = registry().people()[0].clone();
    let a = post(&sb, "/v2/verify", &verify_body(&p, "u", "f")).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(a.content_type.starts_with("text/html") && a.text.contains("<html>"));
    let s = sb.stats();
    assert_eq!((s.injected_failures, s.accepted_submissions), (1, 0));
    assert_eq!(s.requests("/v2/verify", 500), 1);
    // The stats endpoint itself is never faulted.
    let r = http()
        .get(format!("{}/__sandbox/stats", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_fail_rate_fails_about_that_fraction_reproducibly() {
    let run = || async {
        let mut c = config();
        c.faults.fail_rate = 0.3;
        c.seed = 42;
        let sb = start(c).await;
        let mut pattern = Vec::new();
        for i in 0..60 {
            let a = post(
                &sb,
                "/v1/job_status",
                &status_body("u", &format!("nope{i}")),
            )
            .await;
            pattern.push(a.status == StatusCode::INTERNAL_SERVER_ERROR);
        }
        sb.shutdown().await;
        pattern
    };
    let (a, b) = (run().await, run().await);
    assert_eq!(a, b, "the same seed fails the same requests");
    let failed = a.iter().filter(|f| **f).count();
    assert!((5..=35).contains(&failed), "{failed} of 60 at 0.3");
}

#[tokio::test]
async fn the_throttle_answers_429_with_retry_after_unprocessed() {
    let mut c = config();
    c.faults.throttle_rps = Some(3);
    let sb = start(c).await;
    let p = registry().people()[0].clone();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let a = post(&sb, "/v2/verify", &verify_body(&p, "u", &format!("t{i}"))).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(a.retry_after.as_deref(), Some("1"));
        }
        statuses.push(a.status);
    }
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(throttled >= 2, "{statuses:?}");
    let s = sb.stats();
    assert_eq!(s.injected_throttles as usize, throttled);
    assert_eq!(
        s.accepted_submissions as usize,
        8 - throttled,
        "throttled requests were not processed"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let mut c = config();
    c.faults.latency = Duration::from_millis(150);
    c.faults.latency_jitter = Duration::from_millis(50);
    let sb = start(c).await;
    let t = std::time::Instant::now();
    post(&sb, "/v1/job_status", &status_body("u", "j")).await;
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn stats_count_by_endpoint_status_and_busiest_second() {
    let sb = start(config()).await;
    let p = registry().people()[0].clone();
    post(&sb, "/v2/verify", &verify_body(&p, "u", "s1")).await;
    post(&sb, "/v2/verify", &verify_body(&p, "u", "s1")).await;
    post(&sb, "/v1/job_status", &status_body("u", "s1")).await;
    post(&sb, "/v1/job_status", &status_body("u", "missing")).await;
    http()
        .get(format!("{}/nowhere", sb.base_url()))
        .send()
        .await
        .unwrap();
    let r = http()
        .get(format!("{}/__sandbox/stats", sb.base_url()))
        .send()
        .await
        .unwrap();
    let over_http: smile_recon::sandbox::Stats = r.json().await.unwrap();
    assert_eq!(
        over_http,
        sb.stats(),
        "the endpoint and the in-process view agree"
    );
    let s = over_http;
    assert_eq!(s.requests("/v2/verify", 200), 1);
    assert_eq!(s.requests("/v2/verify", 400), 1);
    assert_eq!(s.requests("/v1/job_status", 200), 1);
    assert_eq!(s.requests("/v1/job_status", 404), 1);
    assert_eq!(s.requests("other", 404), 1);
    assert_eq!(s.total_requests, 5);
    assert_eq!((s.accepted("s1"), s.duplicate_rejections), (1, 1));
    assert!((1..=5).contains(&s.max_requests_in_one_second));
    sb.shutdown().await;
}

/// The project's own client (crate::api) confirms every signed answer: it must accept the
/// sandbox's.
#[tokio::test]
async fn the_projects_client_confirms_the_sandboxs_answers() {
    let mut c = config();
    c.callback_delay = Duration::from_millis(10);
    let sb = start(c).await;
    let client = SmileClient::new(ClientConfig {
        base_url: sb.base_url(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        credentials: creds(),
        extra_roots: Vec::new(),
    })
    .unwrap();
    let p = registry().people()[13].clone();
    let id_info = IdInfo {
        country: p.country.clone(),
        id_type: p.id_type.clone(),
        id_number: p.id_number.clone(),
        first_name: Some(p.first_name.clone()),
        middle_name: None,
        last_name: Some(p.last_name.clone()),
        dob: Some(p.dob.clone()),
        gender: Some(p.gender.clone()),
        phone_number: None,
        bank_code: None,
    };
    let params = |job: &str| PartnerParams {
        job_id: job.into(),
        user_id: "cu".into(),
        job_type: None,
        extra: Default::default(),
    };
    match client
        .submit(SubmitEndpoint::Verify, &id_info, &params("c1"), None)
        .await
        .unwrap()
    {
        SubmitReply::Result(r) => assert_eq!(r.result.result_code.as_deref(), Some("1020")),
        other => panic!("{other:?}"),
    }
    let rx = receiver(0).await;
    let reply = client
        .submit(
            SubmitEndpoint::VerifyAsync,
            &id_info,
            &params("c2"),
            Some(&rx.url()),
        )
        .await
        .unwrap();
    assert!(matches!(reply, SubmitReply::Accepted(ref a) if a.success));
    let cb: smile_recon::api::models::SignedResult =
        serde_json::from_value(rx.wait_for(1, Duration::from_secs(5)).await[0].clone()).unwrap();
    assert!(client.confirm_result(&cb));
    let status = client.job_status("cu", "c1", true, false).await.unwrap();
    assert_eq!(status.result_code(), Some("1020"));
    let e = client
        .job_status("cu", "nope", false, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("2304"));
    let e = client
        .submit(SubmitEndpoint::Verify, &id_info, &params("c1"), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("2215"));
    sb.shutdown().await;
}
