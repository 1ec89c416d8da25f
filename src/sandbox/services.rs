//! `GET /v1/services`: the supported id types per country, with the fields a request
//! needs, the documented ID number regex, and a test ID number from this sandbox's
//! registry. Built once at start: it never changes while the server runs.

use serde_json::{Map, Value, json};

use crate::api::id_formats::{FORMATS, REQUIRED_FIELDS};

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
            "required_fields": REQUIRED_FIELDS,
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
            assert_eq!(t["id_number_regex"], f.pattern);
            assert!(t["required_fields"].as_array().unwrap().len() >= 5);
            assert!(t["test_data"].is_string(), "{f:?}");
        }
    }
}
