//! `GET /v1/services`: the supported id types per country, with the fields a request
//! needs (a bank account's `bank_code` included), the published ID number regex (`null`
//! where Smile ID publishes none), and a test ID number from this sandbox's registry.
//! Built once at start: it never changes while the server runs.

use serde_json::{Map, Value, json};

use crate::api::id_formats::FORMATS;

use super::registry::Registry;

pub fn body(registry: &Registry) -> String {
    let mut countries: Map<String, Value> = Map::new();
    for f in FORMATS {
        let test_data = registry
            .people()
            .iter()
            .find(|p| p.country == f.country && p.id_type == f.id_type)
            .map(|p| p.id_number.clone());
        let entry = json!({
            "required_fields": f.required_fields(),
            "id_number_regex": f.pattern,
            "case_insensitive": f.case_insensitive,
            "test_data": test_data,
        });
        if let Value::Object(types) = countries
            .entry(f.country)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            types.insert(f.id_type.to_owned(), entry);
        }
    }
    json!({ "id_types": countries }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_type_is_listed_with_its_regex() {
        let reg = Registry::generate(FORMATS.len(), 1);
        let v: Value = serde_json::from_str(&body(&reg)).unwrap();
        for f in FORMATS {
            let t = &v["id_types"][f.country][f.id_type];
            assert_eq!(t["id_number_regex"].as_str(), f.pattern);
            let fields = t["required_fields"].as_array().unwrap();
            assert!(fields.len() >= 5);
            for extra in f.extra_required {
                assert!(fields.iter().any(|v| v == extra), "{f:?}");
            }
            assert!(t["test_data"].is_string(), "{f:?}");
        }
    }
}
