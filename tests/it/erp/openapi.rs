//! `GET /api/openapi.json`, the document utoipa generates from the code: a snapshot of it, and
//! checks that it matches the server. Its paths are exactly the routes, and each route answers
//! exactly the documented methods; its request schemas have exactly the fields the domain reads
//! and require exactly the ones it requires; its examples are accepted; and real responses
//! validate (JSON Schema 2020-12, the `jsonschema` crate) against the schema documented for
//! their status and media type (here the ERP's; `telemetry/openapi.rs` and `oauth/openapi.rs`
//! check the other surfaces).

use std::collections::{BTreeMap, BTreeSet};

use pairgate::erp::{customers, devices, models, sales};
use pairgate::events::FeedType;
use pairgate::http::erp::ROUTES;
use pairgate::http::openapi::{OAUTH_ROUTES, TELEMETRY_ROUTES};
use serde_json::{Value, json};

use super::{ErpClient, expect_json, sale};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(the_document_matches_routes_fields_and_responses);

/// The whole generated document (the served one adds `servers`).
#[test]
fn openapi_document_snapshot() {
    let doc = pairgate::http::openapi::document().unwrap();
    insta::assert_json_snapshot!("openapi_document", doc);
}

/// Validates `value` against `schema`, whose `$ref`s point into `doc`: the document is the root
/// resource, with the schema's keywords added (OpenAPI's own members are no JSON Schema keywords).
pub(crate) fn validate(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    let mut root = doc.clone();
    let members = root.as_object_mut().unwrap();
    for (key, keyword) in schema.as_object().unwrap() {
        members.insert(key.clone(), keyword.clone());
    }
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Checks a response against the document's schema for the operation, status and media type.
pub(crate) async fn conforms(
    doc: &Value,
    method: &str,
    path: &str,
    res: reqwest::Response,
) -> Value {
    let status = res.status().as_u16().to_string();
    let media = res.headers()["content-type"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let response = &doc["paths"][path][method]["responses"][&status];
    assert!(
        response.is_object(),
        "{method} {path}: status {status} is not documented ({body})"
    );
    let schema = &response["content"][&media]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no schema for {media}"
    );
    validate(doc, schema, &body).unwrap_or_else(|e| panic!("{method} {path} {status}: {e}"));
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
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"] == "is required")
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect()
}

/// The documented methods of each documented path.
fn documented_methods(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| {
            let methods = ops.as_object().unwrap().keys().map(|m| m.to_uppercase());
            (path.clone(), methods.collect())
        })
        .collect()
}

/// A concrete URL for a path template.
fn instance(template: &str) -> String {
    template
        .replace("{serial}", "SN-1")
        .replace("{sale_id}", "S-1")
        .replace("{customer_number}", "C-1")
        .replace("{verdict}", "confirm")
        .replace("{model}", "M-1")
}

/// The document names exactly the routes of the ERP, telemetry and OAuth surfaces (with the
/// RFC 8414 metadata under `/.well-known/`), and each route refuses any other method with 405
/// and an `Allow` that names the documented ones.
async fn paths_are_the_routes(app: &TestApp, doc: &Value) {
    let documented = documented_methods(doc);
    let mut routed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (method, path) in ROUTES.iter().chain(TELEMETRY_ROUTES).chain(OAUTH_ROUTES) {
        routed
            .entry((*path).to_owned())
            .or_default()
            .insert((*method).to_owned());
    }
    assert_eq!(documented, routed);
    for (path, methods) in &documented {
        let res = app
            .client
            .request(reqwest::Method::PATCH, app.url(&instance(path)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "PATCH {path}");
        let allow: BTreeSet<String> = res.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(&allow, methods, "{path}");
    }
}

async fn the_document_matches_routes_fields_and_responses(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app.get("/api/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], app.base.as_str());
    assert_eq!(
        doc["components"]["securitySchemes"]["dpop"]["scheme"],
        "DPoP"
    );
    paths_are_the_routes(&app, &doc).await;

    // Event types: the same vocabulary as the domain's.
    let types: BTreeSet<String> = doc["components"]["schemas"]["FeedType"]["enum"]
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
    assert_eq!(
        doc["components"]["schemas"]["Event"]["properties"]["type"]["$ref"],
        "#/components/schemas/FeedType"
    );

    // Request schemas: the same fields as the domain reads, the same required ones.
    assert_eq!(schema_fields(&doc, "DevicePut"), set(devices::FIELDS));
    assert_eq!(schema_fields(&doc, "SalePut"), set(sales::FIELDS));
    assert_eq!(schema_fields(&doc, "Party"), set(sales::PARTY_FIELDS));
    assert_eq!(schema_fields(&doc, "CustomerPut"), set(customers::FIELDS));
    assert_eq!(schema_fields(&doc, "ModelPut"), set(models::FIELDS));
    assert_eq!(schema_fields(&doc, "MetricPut"), set(models::METRIC_FIELDS));
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
    assert_eq!(
        required_by_server(&erp, "/api/erp/v1/models/M-1", json!({})).await,
        schema_required(&doc, "ModelPut")
    );
    let metric_required: BTreeSet<String> =
        required_by_server(&erp, "/api/erp/v1/models/M-1", json!({ "metrics": [{}] }))
            .await
            .into_iter()
            .map(|p| p.replace("/metrics/0", ""))
            .collect();
    assert_eq!(metric_required, schema_required(&doc, "MetricPut"));
    responses_conform(&app, &erp, &doc).await;
}

/// Examples are valid and accepted, and responses of every kind match their schemas.
async fn responses_conform(app: &TestApp, erp: &ErpClient<'_>, doc: &Value) {
    let example = |name: &str| {
        let example = doc["components"]["schemas"][name]["examples"][0].clone();
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        validate(doc, &schema, &example).unwrap();
        example
    };
    let d = "/api/erp/v1/devices/{serial}";
    let s = "/api/erp/v1/sales/{sale_id}";
    let c = "/api/erp/v1/customers/{customer_number}";
    let e = "/api/erp/v1/events";
    let v = "/api/erp/v1/pairings/{serial}/{verdict}";
    let device = example("DevicePut");
    let created = erp.put("/api/erp/v1/devices/SN-0001", &device).await;
    assert_eq!(conforms(doc, "put", d, created).await["change"], "created");
    let again = erp.put("/api/erp/v1/devices/SN-0001", &device).await;
    conforms(doc, "put", d, again).await;
    let mut other_key = device.clone();
    other_key["public_jwk"] = crate::support::device::Signer::es256().jwk();
    let conflict = erp.put("/api/erp/v1/devices/SN-0001", &other_key).await;
    assert_eq!(conflict.status(), 409);
    conforms(doc, "put", d, conflict).await;
    let invalid = erp.put("/api/erp/v1/devices/x%20y", &json!({})).await;
    conforms(doc, "put", d, invalid).await;
    let res = erp.put("/api/erp/v1/sales/S-1", &example("SalePut")).await;
    assert_eq!(conforms(doc, "put", s, res).await["created"], true);
    let res = erp
        .put("/api/erp/v1/sales/S-2", &sale("SN-0001", "C-1", 1))
        .await;
    conforms(doc, "put", s, res).await;
    conforms(doc, "delete", s, erp.delete("/api/erp/v1/sales/S-1").await).await;
    let unknown = erp.delete("/api/erp/v1/sales/S-unknown").await;
    conforms(doc, "delete", s, unknown).await;
    let customer = example("CustomerPut");
    let res = erp.put("/api/erp/v1/customers/C-1001", &customer).await;
    assert_eq!(conforms(doc, "put", c, res).await["invitation"], "queued");
    let res = erp
        .put("/api/erp/v1/customers/C-1001", &json!({ "name": 5 }))
        .await;
    conforms(doc, "put", c, res).await;
    let page = conforms(doc, "get", e, erp.get("/api/erp/v1/events").await).await;
    assert!(page["events"].as_array().unwrap().len() >= 4);
    conforms(doc, "get", e, erp.get("/api/erp/v1/events?limit=x").await).await;
    conforms(doc, "get", e, app.get("/api/erp/v1/events").await).await;
    let res = erp
        .post("/api/erp/v1/pairings/SN-0001/confirm", &json!({}))
        .await;
    assert_eq!(
        conforms(doc, "post", v, res).await["type"],
        "urn:pairgate:problem:not-provisional"
    );
    expect_json(erp.get("/api/erp/v1/events?after=1").await, 200).await;
    let m = "/api/erp/v1/models/{model}";
    let model = example("ModelPut");
    let res = erp.put("/api/erp/v1/models/TX-9000", &model).await;
    assert_eq!(conforms(doc, "put", m, res).await["change"], "created");
    let res = erp.put("/api/erp/v1/models/TX-9000", &model).await;
    assert_eq!(conforms(doc, "put", m, res).await["change"], "unchanged");
    let res = erp
        .put(
            "/api/erp/v1/models/TX-9000",
            &json!({ "metrics": [{ "key": 1 }] }),
        )
        .await;
    conforms(doc, "put", m, res).await;
}
