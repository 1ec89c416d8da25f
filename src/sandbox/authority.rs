//! The ID authority: looks an ID number up in the registry and builds the job's result
//! exactly as seed 004 shows it (Basic KYC) or as Enhanced KYC returns personal data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::api::models::{IdInfo, PartnerParams, VerifyResult};

use super::matching::Comparison;
use super::names;
use super::registry::{Person, Registry};

/// A finished job's result, before it is signed for one answer or callback.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub result_code: &'static str,
    /// job_status's `job_success`: the result is in the Approved category.
    pub success: bool,
    /// Error-coded results (1014, 1015) have no SmileJobID and leave no job behind a
    /// sync call: the partner resubmits the same job_id later.
    pub is_error: bool,
    pub result: VerifyResult,
}

/// Answers requests against one registry and numbers the jobs it finishes.
#[derive(Debug)]
pub struct Authority {
    registry: Registry,
    next_job: AtomicU64,
}

fn actions(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect()
}

impl Authority {
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            next_job: AtomicU64::new(1),
        }
    }

    fn smile_job_id(&self) -> String {
        format!("{:010}", self.next_job.fetch_add(1, Ordering::Relaxed))
    }

    /// The result for one request. `available` is false during an outage (1015).
    pub fn verify(
        &self,
        id_info: &IdInfo,
        partner_params: &PartnerParams,
        enhanced: bool,
        available: bool,
    ) -> Verdict {
        let shape = ResultShape {
            partner_params,
            enhanced,
        };
        if super::id_numbers::authority_check(
            &id_info.country,
            &id_info.id_type,
            &id_info.id_number,
        )
        .is_err()
        {
            return shape.error("1014", "Error - Unsupported ID number format", "Not Done");
        }
        if !available {
            return shape.error(
                "1015",
                "Error - Queried Database Unavailable",
                "Issuer Unavailable",
            );
        }
        let Some(person) =
            self.registry
                .lookup(&id_info.country, &id_info.id_type, &id_info.id_number)
        else {
            return self.invalid_id(&shape);
        };
        if enhanced {
            self.personal_info(&shape, person)
        } else {
            self.compared(&shape, id_info, person)
        }
    }

    /// 1013: the ID number is not in the registry.
    fn invalid_id(&self, shape: &ResultShape<'_>) -> Verdict {
        let mut acts = shape.not_done("Not Verified");
        if !shape.enhanced {
            acts.insert("ID_Verification".into(), json!("Invalid ID"));
        }
        let mut result = shape.result("1013", "Invalid ID", acts);
        result.smile_job_id = Some(self.smile_job_id());
        Verdict {
            result_code: "1013",
            success: false,
            is_error: false,
            result,
        }
    }

    /// Enhanced KYC (1012): the person's data as the authority holds it.
    fn personal_info(&self, shape: &ResultShape<'_>, person: &Person) -> Verdict {
        let acts = actions(&[
            ("Verify_ID_Number", "Verified"),
            ("Return_Personal_Info", "Returned"),
        ]);
        let mut result = shape.result("1012", "ID Validated", acts);
        result.smile_job_id = Some(self.smile_job_id());
        let fields = [
            ("FullName", person.full_name()),
            ("FirstName", person.first_name.clone()),
            ("MiddleName", person.middle_name.clone()),
            ("LastName", person.last_name.clone()),
            ("DOB", person.dob.clone()),
            ("Gender", person.gender.clone()),
            ("PhoneNumber", person.phone_number.clone()),
            ("IDType", person.id_type.clone()),
            ("IDNumber", person.id_number.clone()),
            ("Country", names::country_name(&person.country).to_owned()),
            ("ExpirationDate", "Not Available".to_owned()),
        ];
        for (k, v) in fields {
            result.extra.insert(k.into(), Value::String(v));
        }
        Verdict {
            result_code: "1012",
            success: true,
            is_error: false,
            result,
        }
    }

    /// Basic KYC (1020/1021/1022): the request's fields compared with the person's, by
    /// seed 004's matching rules.
    fn compared(&self, shape: &ResultShape<'_>, id_info: &IdInfo, person: &Person) -> Verdict {
        let c = Comparison::of(id_info, person);
        let overall = c.overall();
        let acts = actions(&[
            ("Return_Personal_Info", "Not Applicable"),
            ("Verify_ID_Number", "Verified"),
            ("Names", c.names.as_str()),
            ("DOB", c.dob.as_str()),
            ("Gender", c.gender.as_str()),
            ("Phone_Number", c.phone_number.as_str()),
            ("ID_Verification", overall.text()),
        ]);
        let mut result = shape.result(overall.code(), overall.text(), acts);
        result.smile_job_id = Some(self.smile_job_id());
        Verdict {
            result_code: overall.code(),
            success: overall != super::matching::Overall::NoMatch,
            is_error: false,
            result,
        }
    }
}

/// What every result of one request shares: the request's partner params, and whether it
/// asked for Enhanced KYC (personal data) or Basic KYC (a comparison).
struct ResultShape<'a> {
    partner_params: &'a PartnerParams,
    enhanced: bool,
}

impl ResultShape<'_> {
    /// A result without a SmileJobID, with its code, text and actions.
    fn result(
        &self,
        code: &'static str,
        text: &str,
        acts: BTreeMap<String, Value>,
    ) -> VerifyResult {
        let mut extra = Map::new();
        extra.insert("JSONVersion".into(), json!("1.0.0"));
        VerifyResult {
            smile_job_id: None,
            partner_params: Some(self.partner_params.clone()),
            result_type: Some("ID Verification".into()),
            result_text: Some(text.to_owned()),
            result_code: Some(code.to_owned()),
            is_final_result: Some("true".into()),
            actions: Some(acts),
            confidence_value: None,
            // Seed 004's example spells it this way; a faithful copy keeps the typo.
            source: Some(
                if self.enhanced {
                    "ID API"
                } else {
                    "ID Verificaiton"
                }
                .into(),
            ),
            extra,
        }
    }

    /// The actions of a job that compared nothing; `verify` is its `Verify_ID_Number`.
    fn not_done(&self, verify: &str) -> BTreeMap<String, Value> {
        if self.enhanced {
            actions(&[
                ("Verify_ID_Number", verify),
                ("Return_Personal_Info", "Not Returned"),
            ])
        } else {
            actions(&[
                ("Return_Personal_Info", "Not Applicable"),
                ("Verify_ID_Number", verify),
                ("Names", "Not Done"),
                ("DOB", "Not Done"),
                ("Gender", "Not Done"),
                ("Phone_Number", "Not Done"),
                ("ID_Verification", "Not Done"),
            ])
        }
    }

    /// An error-coded result (1014, 1015): no SmileJobID, no job left behind.
    fn error(&self, code: &'static str, text: &str, verify: &str) -> Verdict {
        Verdict {
            result_code: code,
            success: false,
            is_error: true,
            result: self.result(code, text, self.not_done(verify)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::NumberOrString;

    fn params() -> PartnerParams {
        PartnerParams {
            job_id: "j".into(),
            user_id: "u".into(),
            job_type: Some(NumberOrString::Number(5)),
            extra: Map::new(),
        }
    }

    fn request_for(reg: &Registry) -> IdInfo {
        let p = &reg.people()[0];
        IdInfo {
            country: p.country.clone(),
            id_type: p.id_type.clone(),
            id_number: p.id_number.clone(),
            first_name: Some(p.first_name.clone()),
            middle_name: None,
            last_name: Some(p.last_name.clone()),
            dob: Some(p.dob.clone()),
            gender: Some(p.gender.clone()),
            phone_number: Some(p.phone_number.clone()),
            bank_code: None,
        }
    }

    #[test]
    fn basic_kyc_exact_match_has_seed_004_shape() {
        let reg = Registry::generate(5, 3);
        let a = Authority::new(reg.clone());
        let o = a.verify(&request_for(&reg), &params(), false, true);
        assert_eq!(
            (o.result_code, o.success, o.is_error),
            ("1020", true, false)
        );
        let v = serde_json::to_value(&o.result).unwrap();
        assert_eq!(v["ResultType"], "ID Verification");
        assert_eq!(v["ResultText"], "Exact Match");
        assert_eq!(v["IsFinalResult"], "true");
        assert_eq!(v["JSONVersion"], "1.0.0");
        assert_eq!(v["SmileJobID"], "0000000001");
        assert_eq!(v["PartnerParams"]["job_type"], 5);
        for k in [
            "Return_Personal_Info",
            "Verify_ID_Number",
            "Names",
            "DOB",
            "Gender",
            "Phone_Number",
            "ID_Verification",
        ] {
            assert!(v["Actions"][k].is_string(), "{k}");
        }
        assert_eq!(v["Actions"]["Verify_ID_Number"], "Verified");
        assert_eq!(v["Actions"]["ID_Verification"], "Exact Match");
    }

    #[test]
    fn unknown_malformed_and_unavailable_ids() {
        let reg = Registry::generate(5, 3);
        let a = Authority::new(reg.clone());
        let mut req = request_for(&reg);
        let good = req.id_number.clone();
        req.id_number = super::super::id_numbers::malformed(&good);
        let o = a.verify(&req, &params(), false, true);
        assert_eq!(o.result_code, "1014");
        assert!(o.is_error && o.result.smile_job_id.is_none());
        req.id_number = good;
        let o = a.verify(&req, &params(), false, false);
        assert_eq!(o.result_code, "1015");
        assert_eq!(
            o.result.action("Verify_ID_Number"),
            Some("Issuer Unavailable")
        );
        assert!(o.result.smile_job_id.is_none());
        let o = a.verify(
            &request_for(&Registry::generate(5, 99)),
            &params(),
            false,
            true,
        );
        assert_eq!(o.result_code, "1013");
        assert!(!o.success && !o.is_error && o.result.smile_job_id.is_some());
    }

    #[test]
    fn enhanced_kyc_returns_personal_info() {
        let reg = Registry::generate(5, 3);
        let a = Authority::new(reg.clone());
        let mut req = request_for(&reg);
        req.first_name = Some("Someone Else".into());
        let o = a.verify(&req, &params(), true, true);
        assert_eq!(o.result_code, "1012");
        let p = &reg.people()[0];
        assert_eq!(o.result.extra["FullName"], json!(p.full_name()));
        assert_eq!(o.result.extra["IDNumber"], json!(p.id_number));
        assert_eq!(o.result.action("Return_Personal_Info"), Some("Returned"));
    }
}
