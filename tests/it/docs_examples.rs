//! The examples the documentation points at work as the documentation says: the installed-base
//! files of `docs/erp-integration.md` import without a rejected row, and a second import changes
//! nothing.

use std::path::Path;

use pairgate::erp::import::{self, Format};

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(the_installed_base_examples_import_cleanly_and_idempotently);

async fn the_installed_base_examples_import_cleanly_and_idempotently(backend: Backend) {
    let app = TestApp::start(backend).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/erp-integration.md")).unwrap();
    for (name, devices, sales) in [("installed-base.csv", 2, 2), ("installed-base.jsonl", 1, 1)] {
        assert!(
            guide.contains(&format!("(../examples/{name})")),
            "the guide links {name}"
        );
        let path = root.join("examples").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let format = Format::from_path(&path).unwrap();
        let (rows, bad) = import::parse(&text, format).unwrap();
        assert!(bad.is_empty(), "{name}: {bad:?}");
        let first = app
            .ctx
            .erp
            .import(rows.clone(), 500, &|_| ())
            .await
            .unwrap();
        assert_eq!(
            (first.devices.created, first.sales.created),
            (devices, sales),
            "{name}"
        );
        assert!(first.refused.is_empty(), "{name}: {:?}", first.refused);
        let again = app.ctx.erp.import(rows, 500, &|_| ()).await.unwrap();
        assert_eq!(
            (again.devices.unchanged, again.sales.unchanged),
            (devices, sales),
            "{name}: a second run changes nothing"
        );
    }
}
