use serde_json::json;

use super::*;
use crate::ids::{TenantId, UserId};
use crate::store::history::PersonName;

mod cases;
use cases::CASES;

fn names() -> Names {
    let mut names = Names::default();
    let person = |name: &str, role: &str| PersonName {
        name: name.to_owned(),
        tenant_id: Some(TenantId(3)),
        role: role.to_owned(),
    };
    names
        .users
        .insert(UserId(1), person("Ann Example", "owner"));
    names
        .users
        .insert(UserId(2), person("Bob Example", "viewer"));
    names.users.insert(UserId(9), person("Sam Staff", "staff"));
    names
        .groups
        .insert(GroupId(5), (TenantId(3), "Plant North".to_owned()));
    names
        .groups
        .insert(GroupId(6), (TenantId(3), "Plant South".to_owned()));
    names.tenants.insert(TenantId(3), "Acme Ltd".to_owned());
    names.tenants.insert(TenantId(4), "Rival Inc".to_owned());
    names
        .clients
        .insert("erp".to_owned(), "Factory ERP".to_owned());
    names
        .clients
        .insert("dash".to_owned(), "Acme Dashboard".to_owned());
    names.notes.insert(7, "ERP shows the sale".to_owned());
    names
}

fn said(action: Action, actor: &str, subject: &str, detail: Value) -> String {
    let entry = Entry {
        id: 1,
        occurred_at: 0,
        action: Some(action),
        action_name: action.as_str().to_owned(),
        actor: Party::parse(actor),
        subject: Party::parse(subject),
        detail,
    };
    sentence(&entry, &names())
}

/// Words joined by `_` (`sold_to_other`) or a `kind:id` (`user:1`): codes, not words.
fn looks_like_code(text: &str) -> bool {
    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase());
    text.split(|c: char| c.is_whitespace() || "(),;".contains(c))
        .any(|token| {
            let token = token.trim_end_matches('.');
            (token.contains('_') && token.split('_').all(word))
                || token
                    .split_once(':')
                    .is_some_and(|(a, b)| word(a) && !b.is_empty())
        })
}

#[test]
fn every_action_reads_as_a_sentence_with_names() {
    let cases = CASES;
    for action in Action::ALL {
        assert!(
            cases.iter().any(|c| c.0 == action),
            "{} has no case",
            action.as_str()
        );
    }
    for &(action, actor, subject, detail, expected) in cases {
        let detail = serde_json::from_str(detail).expect("a JSON detail");
        let text = said(action, actor, subject, detail);
        assert_eq!(text, expected, "{}", action.as_str());
        assert!(!text.contains("user:") && !text.contains('{'), "{text}");
        assert!(!looks_like_code(&text), "{text}");
        assert!(!text.contains(action.as_str()), "{text}");
    }
}

#[test]
fn the_code_detector_can_fail() {
    assert!(looks_like_code("refused: sold_to_other"));
    assert!(looks_like_code("by user:1"));
    assert!(!looks_like_code("Ann Example at 10:30 UTC"));
}

#[test]
fn unknown_people_groups_and_codes_stay_unnamed() {
    let text = said(
        Action::UserAccessChanged,
        "user:77",
        "user:2",
        json!({"all": false, "groups": [5, 6, 99], "devices": ["SN-1", "SN-2"]}),
    );
    assert_eq!(
        text,
        "Someone outside your company gave Bob Example access to the groups Plant North, Plant \
         South and a group that no longer exists and the devices SN-1 and SN-2"
    );
    let text = said(
        Action::PairingRefused,
        "user:2",
        "device:SN-1",
        json!({"reason": "brand_new_reason", "claimant_tenant": 4}),
    );
    assert_eq!(
        text,
        "Bob Example from Rival Inc tried to pair the device SN-1 and was refused: the \
         manufacturer's records do not allow it"
    );
    assert_eq!(
        said(
            Action::UserSignedOut,
            "user:2",
            "user:2",
            json!({"everywhere": true, "sessions": 3})
        ),
        "Bob Example signed out everywhere (3 sessions)"
    );
    assert_eq!(
        said(
            Action::UserAccessChanged,
            "user:1",
            "user:2",
            json!({"all": true})
        ),
        "Ann Example gave Bob Example access to all devices"
    );
}

#[test]
fn a_staff_grant_names_who_granted_it_where_the_viewer_may_know() {
    let granted = |by: &str| {
        said(
            Action::PairingApproved,
            "user:2",
            "device:SN-1",
            json!({"flow": 1, "basis": "staff_grant", "granted_by": by}),
        )
    };
    assert_eq!(
        granted("user:9"),
        "Bob Example paired the device SN-1 (Sam Staff of the manufacturer's support team \
         allowed it)"
    );
    assert_eq!(
        granted("user:77"),
        "Bob Example paired the device SN-1 (the manufacturer's support team allowed it)",
        "a granter the viewer may not see is not named"
    );
    let line = |granted_by: Option<&str>| {
        let record = PairingRecord {
            id: 1,
            serial: "SN-1".into(),
            tenant_id: TenantId(3),
            status: PairingStatus::Active,
            basis: "staff_grant".to_owned(),
            sale_id: None,
            flow_id: Some(1),
            approved_by: "user:2".to_owned(),
            created_at: 0,
            confirmed_at: Some(0),
            ended_at: None,
            end_reason: None,
            granted_by: granted_by.map(str::to_owned),
        };
        pairing_line(&record, &names(), None, Zone::UTC)
    };
    assert!(
        line(Some("user:9"))
            .ends_with("by Bob Example: Sam Staff of the manufacturer's support team allowed it"),
        "{}",
        line(Some("user:9"))
    );
    assert!(
        line(None).ends_with("by Bob Example: the manufacturer's support team allowed it"),
        "{}",
        line(None)
    );
}
