//! `GET /api/openapi.json` stays in step with the code: its ERP paths are exactly the routes, its
//! request schemas list exactly the fields the domain reads and require exactly the ones it
//! requires, its examples are accepted, and real responses match its response schemas.

use std::collections::BTreeSet;

use pairgate::erp::{customers, devices, sales};
use pairgate::events::FeedType;
use pairgate::http::erp::ROUTES;
use serde_json::{Value, json};

use super::{ErpClient, expect_json, sale};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(the_document_matches_routes_fields_and_responses);

/// Resolves `#/components/...` references.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(doc, target)
        }
        None => schema,
    }
}

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// The subset of JSON Schema 2020-12 the document uses; returns the first mismatch.
pub(crate) fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|o| validate(doc, o, value, at).is_ok())
            .count();
        return if matching == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {matching} oneOf branches match {value}"))
        };
    }
    if let Some(ty) = schema.get("type") {
        let ok = match ty {
            Value::String(t) => type_matches(t, value),
            Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), value)),
            _ => panic!("bad type at {at}"),
        };
        if !ok {
            return Err(format!("{at}: {value} is not {ty}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !value.is_null()
        && !options.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {options:?}"));
    }
    if let Value::Object(obj) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(required.as_str().unwrap()) {
                return Err(format!("{at}: {required} is missing"));
            }
        }
        for (key, member) in obj {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => validate(doc, s, member, &format!("{at}/{key}"))?,
                None if schema.get("additionalProperties") == Some(&json!(false)) => {
                    return Err(format!("{at}: {key} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            validate(doc, item, v, &format!("{at}/{i}"))?;
        }
    }
    Ok(())
}

/// Checks a response against the document's schema for the operation and status.
pub(crate) async fn conforms(
    doc: &Value,
    method: &str,
    path: &str,
    res: reqwest::Response,
) -> Value {
    let status = res.status().as_u16().to_string();
    let media = res.headers()["content-type"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let op = &doc["paths"][path][method];
    let response = resolve(
        doc,
        op["responses"].get(&status).unwrap_or_else(|| {
            panic!("{method} {path}: status {status} is not documented ({body})")
        }),
    );
    let schema = &response["content"][&media]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} {status}: no schema for {media}"
    );
    validate(doc, schema, &body, "").unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
    body
}

fn schema_fields(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn schema_required(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("#/{}", v.as_str().unwrap()))
        .collect()
}

fn set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

/// The body fields the server says are required when they are all missing.
async fn required_by_server(erp: &ErpClient<'_>, path: &str, body: Value) -> BTreeSet<String> {
    let res = erp.put(path, &body).await;
    let problem = expect_problem_json(res).await;
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"] == "is required")
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect()
}

async fn expect_problem_json(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 422);
    res.json().await.unwrap()
}

async fn the_document_matches_routes_fields_and_responses(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app.get("/api/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], app.base.as_str());

    // Paths: the ERP part is exactly the routes; the telemetry API is described too.
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/api/erp/"))
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, routed);
    assert!(doc["paths"]["/api/v1/telemetry"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/devices/{serial}/telemetry"]["get"].is_object());

    // Event types: the same vocabulary as the domain's.
    let types: BTreeSet<String> =
        doc["components"]["schemas"]["Event"]["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
    let domain: BTreeSet<String> = FeedType::ALL
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    assert_eq!(types, domain);

    // Request schemas: the same fields as the domain reads, the same required ones.
    assert_eq!(schema_fields(&doc, "DevicePut"), set(devices::FIELDS));
    assert_eq!(schema_fields(&doc, "SalePut"), set(sales::FIELDS));
    assert_eq!(schema_fields(&doc, "Party"), set(sales::PARTY_FIELDS));
    assert_eq!(schema_fields(&doc, "CustomerPut"), set(customers::FIELDS));
    let erp = ErpClient::new(&app).await;
    assert_eq!(
        required_by_server(&erp, "/api/erp/v1/devices/SN-1", json!({})).await,
        schema_required(&doc, "DevicePut")
    );
    assert_eq!(
        required_by_server(&erp, "/api/erp/v1/sales/S-1", json!({})).await,
        schema_required(&doc, "SalePut")
    );
    assert_eq!(
        required_by_server(&erp, "/api/erp/v1/customers/C-1", json!({})).await,
        schema_required(&doc, "CustomerPut")
    );

    // Examples are accepted, and responses of every kind match their schemas.
    let example = |name: &str| doc["components"]["schemas"][name]["example"].clone();
    let d = "/api/erp/v1/devices/{serial}";
    let s = "/api/erp/v1/sales/{sale_id}";
    let c = "/api/erp/v1/customers/{customer_number}";
    let e = "/api/erp/v1/events";
    let created = erp
        .put("/api/erp/v1/devices/SN-0001", &example("DevicePut"))
        .await;
    assert_eq!(conforms(&doc, "put", d, created).await["change"], "created");
    conforms(
        &doc,
        "put",
        d,
        erp.put("/api/erp/v1/devices/SN-0001", &example("DevicePut"))
            .await,
    )
    .await;
    let mut other_key = example("DevicePut");
    other_key["public_jwk"] = crate::support::device::Signer::es256().jwk();
    conforms(
        &doc,
        "put",
        d,
        erp.put("/api/erp/v1/devices/SN-0001", &other_key).await,
    )
    .await;
    conforms(
        &doc,
        "put",
        d,
        erp.put("/api/erp/v1/devices/x%20y", &json!({})).await,
    )
    .await;
    let res = erp.put("/api/erp/v1/sales/S-1", &example("SalePut")).await;
    assert_eq!(conforms(&doc, "put", s, res).await["created"], true);
    conforms(
        &doc,
        "put",
        s,
        erp.put("/api/erp/v1/sales/S-2", &sale("SN-0001", "C-1", 1))
            .await,
    )
    .await;
    conforms(&doc, "delete", s, erp.delete("/api/erp/v1/sales/S-1").await).await;
    conforms(
        &doc,
        "delete",
        s,
        erp.delete("/api/erp/v1/sales/S-unknown").await,
    )
    .await;
    let res = erp
        .put("/api/erp/v1/customers/C-1001", &example("CustomerPut"))
        .await;
    assert_eq!(conforms(&doc, "put", c, res).await["invitation"], "sent");
    conforms(
        &doc,
        "put",
        c,
        erp.put("/api/erp/v1/customers/C-1001", &json!({ "name": 5 }))
            .await,
    )
    .await;
    let page = conforms(&doc, "get", e, erp.get("/api/erp/v1/events").await).await;
    assert!(page["events"].as_array().unwrap().len() >= 4);
    conforms(&doc, "get", e, erp.get("/api/erp/v1/events?limit=x").await).await;
    conforms(&doc, "get", e, app.get("/api/erp/v1/events").await).await;
    expect_json(erp.get("/api/erp/v1/events?after=1").await, 200).await;
}
