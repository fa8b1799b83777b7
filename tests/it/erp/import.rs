//! `pairgate erp import FILE`, run as the binary against a test app's database: bad rows are
//! reported with their line numbers, the rest is imported, and a second run changes nothing.

use std::process::Output;

use serde_json::json;

use super::{ErpClient, expect_json};
use crate::backend_tests;
use crate::support::device::Signer;
use crate::support::{Backend, TestApp};

backend_tests!(
    csv_import_reports_bad_rows_and_is_safe_to_run_twice,
    json_lines_import,
    crlf_csv_errors_name_lines_and_columns,
);

fn import(app: &TestApp, file: &std::path::Path) -> (Output, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = app
        .cli(dir.path())
        .args(["erp", "import", "--batch-size", "2"])
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    (out, stdout, stderr)
}

/// A JSON value as one CSV field.
fn csv_field(value: &serde_json::Value) -> String {
    format!("\"{}\"", value.to_string().replace('"', "\"\""))
}

async fn csv_import_reports_bad_rows_and_is_safe_to_run_twice(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("installed-base.csv");
    let key = csv_field(&Signer::es256().jwk());
    let rows = [
        "type,serial,model,public_jwk,sale_id,sold_at,\
         customer_number,customer_name,customer_kind,revision"
            .to_owned(),
        format!("device,SN-I-1,TX-9000,{key},,,,,,"),
        "device,SN-I-2,TX-9000,\"{\"\"kty\"\":\"\"RSA\"\"}\",,,,,,".to_owned(),
        "sale,SN-I-1,,,I-1,2026-01-05T08:00:00Z,C-1,Acme Water,end_customer,1".to_owned(),
        "sale,SN-I-3,,,I-2,last week,C-1,Acme Water,wholesaler,1".to_owned(),
        "sale,SN-I-1,,,I-3,2026-02-01T08:00:00Z,C-2,Beta,distributor,1".to_owned(),
        "sale,SN-I-4,,,I-4,2026-02-01T08:00:00+01:00,C-2,Beta,distributor,7".to_owned(),
    ];
    std::fs::write(&file, rows.join("\n") + "\n").unwrap();

    let (out, stdout, stderr) = import(&app, &file);
    assert!(
        !out.status.success(),
        "bad rows make the exit status 1\n{stderr}"
    );
    assert!(
        stdout.contains("devices: 1 created, 0 changed, 0 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sales:   2 created, 0 changed, 0 unchanged"),
        "{stdout}"
    );
    let bad: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(bad.len(), 3, "{stderr}");
    assert!(
        bad[0].starts_with("line 3: public_jwk: unsupported key type"),
        "{stderr}"
    );
    assert!(bad[1].starts_with("line 5: "), "{stderr}");
    assert!(
        bad[1].contains("sold_at: must be an RFC 3339 date-time"),
        "{stderr}"
    );
    assert!(
        bad[1].contains("customer_kind: must be end_customer or distributor"),
        "{stderr}"
    );
    assert!(bad[2].starts_with("line 6: "), "{stderr}");
    assert!(bad[2].contains("I-1 of this device is active"), "{stderr}");

    // Again: nothing changes, the same rows are reported.
    let (out, stdout, stderr) = import(&app, &file);
    assert!(!out.status.success());
    assert!(
        stdout.contains("devices: 0 created, 0 changed, 1 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sales:   0 created, 0 changed, 2 unchanged"),
        "{stdout}"
    );
    assert_eq!(stderr.lines().filter(|l| l.starts_with("line ")).count(), 3);

    // What was imported is what the API shows.
    let erp = ErpClient::new(&app).await;
    let types: Vec<String> = erp
        .all_events()
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        ["device.registered", "sale.recorded", "sale.recorded"]
    );
    let i4 = erp
        .put_ok(
            "/api/erp/v1/sales/I-4",
            &json!({
                "serial": "SN-I-4",
                "sold_at": "2026-02-01T07:00:00Z",
                "sold_to": { "customer_number": "C-2", "name": "Beta", "kind": "distributor" },
                "revision": 7,
            }),
            200,
        )
        .await;
    assert_eq!(i4["applied"], false, "the same sale as imported");
}

async fn json_lines_import(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("base.jsonl");
    let lines = [
        json!({ "type": "device", "serial": "SN-J-1", "model": "TX-9000",
                "public_jwk": Signer::ed25519().jwk() }),
        json!({ "type": "sale", "sale_id": "J-1", "serial": "SN-J-1",
                "sold_at": "2026-03-01T00:00:00Z",
                "sold_to": { "customer_number": "D-1", "name": "Dist", "kind": "distributor" },
                "end_customer_number": "C-5", "revision": 1 }),
    ];
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&file, text.join("\n")).unwrap();
    let (out, stdout, stderr) = import(&app, &file);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("sales:   1 created"), "{stdout}");
    let erp = ErpClient::new(&app).await;
    let cancelled = expect_json(erp.delete("/api/erp/v1/sales/J-1").await, 200).await;
    assert_eq!(cancelled["sale"]["end_customer_number"], "C-5");
    assert_eq!(cancelled["sale"]["sold_to"]["kind"], "distributor");
}

/// A CSV file with CRLF line ends (as spreadsheets on Windows write them), a quoted field across
/// two lines among them: errors give the line each row starts on and the CSV column names.
async fn crlf_csv_errors_name_lines_and_columns(backend: Backend) {
    let app = TestApp::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crlf.csv");
    let rows = [
        "type,serial,sale_id,sold_at,customer_number,customer_name,customer_kind,revision",
        "sale,SN-C-1,C-1,2026-01-05T08:00:00Z,K-1,Acme,end_customer,1",
        "sale,SN-C-2,C-2,2026-01-05T08:00:00Z,K-1,Acme,wholesaler,1",
        "sale,SN-C-3,C-3,2026-01-05T08:00:00Z,K-2,\"Beta\r\nLabs\",end_customer,1",
        "sale,SN-C-4,C-4,yesterday,K-1,Acme,end_customer,1",
        "sale,SN-C-5,C-5,2026-01-05T08:00:00Z,,Acme,end_customer,1",
    ];
    std::fs::write(&file, rows.join("\r\n") + "\r\n").unwrap();
    let (out, _, stderr) = import(&app, &file);
    assert!(!out.status.success(), "{stderr}");
    let bad: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(bad.len(), 4, "{stderr}");
    assert!(
        bad[0].starts_with("line 3: customer_kind: must be end_customer or distributor"),
        "{stderr}"
    );
    assert!(bad[1].starts_with("line 4: customer_name: "), "{stderr}");
    assert!(bad[2].starts_with("line 6: sold_at: "), "{stderr}");
    assert!(bad[3].starts_with("line 7: customer_number: "), "{stderr}");
    assert!(!stderr.contains("sold_to"), "API field names in {stderr}");
}
