//! The overall look-up budget: it still stops guessing spread over many networks, one network
//! cannot spend it alone, and while it is spent, addresses that paired a device before go on
//! pairing. The addresses come from the HTTP layer as text; here they are given to the domain
//! directly, as many attackers' requests would bring them.

use futures_util::future::join_all;
use pairgate::accounts::Session;
use pairgate::pairing::{Approval, PairingError, Shown};

use super::{company, requesting, sell, session_of};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    one_address_spends_only_its_own_budget_whoever_guesses,
    one_network_spends_only_its_own_share_of_the_overall_budget,
    addresses_that_paired_before_go_on_pairing_while_the_overall_budget_is_spent,
);

/// Small budgets, so that a test can spend them.
const SMALL_BUDGETS: &str = "[pairing]\ncode_attempts_per_network = 10\ncode_attempts_overall = 30";
/// The address of an office that pairs devices.
const OFFICE: &str = "192.0.2.10";

/// One wrong code from each address at once, by `session`'s person; (unknown, throttled).
async fn guesses(
    app: &TestApp,
    session: &Session,
    addresses: impl Iterator<Item = String>,
) -> (usize, usize) {
    let addresses: Vec<String> = addresses.collect();
    let results = join_all(
        addresses
            .iter()
            .map(|ip| app.ctx.ceremony.look_up(session, "BCDF-GHJK", Some(ip))),
    )
    .await;
    let count = |f: fn(&Result<_, PairingError>) -> bool| results.iter().filter(|r| f(r)).count();
    let unknown = count(|r| matches!(r, Err(PairingError::UnknownCode)));
    let throttled = count(|r| matches!(r, Err(PairingError::Throttled { .. })));
    assert_eq!(unknown + throttled, results.len(), "{results:?}");
    (unknown, throttled)
}

/// Two attacking people, each with 20 attempts per window.
async fn attackers(app: &TestApp) -> (Session, Session) {
    let mut rival = company(app, "rita@rival.example", Some("C-200")).await;
    let mallory = crate::portal::invited(app, &mut rival.owner, "mal@rival.example", "admin").await;
    (
        session_of(app, &rival.owner).await,
        session_of(app, &mallory).await,
    )
}

fn hosts(network: &'static str, n: u32) -> impl Iterator<Item = String> {
    (1..=n).map(move |i| format!("{network}.{i}"))
}

async fn one_address_spends_only_its_own_budget_whoever_guesses(backend: Backend) {
    let app = TestApp::start(backend).await;
    let acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let olivia = session_of(&app, &acme.owner).await;
    let (rita, mal) = attackers(&app).await;
    // Two people at one address, each within their own 20, spend the address's 40.
    let here = |n| std::iter::repeat_n("198.51.100.7".to_owned(), n);
    assert_eq!(guesses(&app, &rita, here(20)).await, (20, 0));
    assert_eq!(guesses(&app, &mal, here(20)).await, (20, 0));
    assert_eq!(guesses(&app, &olivia, here(1)).await, (0, 1));
    assert_eq!(app.throttled("user_code_address").await, Some(1.0));
    assert_eq!(app.throttled("user_code_person").await, Some(0.0));
    // Its neighbour on the same network is not affected.
    let next_door = std::iter::once("198.51.100.8".to_owned());
    assert_eq!(guesses(&app, &olivia, next_door).await, (1, 0));
}

async fn one_network_spends_only_its_own_share_of_the_overall_budget(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(SMALL_BUDGETS)
        .start()
        .await;
    let acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let olivia = session_of(&app, &acme.owner).await;
    let (rita, mal) = attackers(&app).await;
    // 20 addresses of one IPv4 /24; twenty /64s of one IPv6 /48.
    assert_eq!(
        guesses(&app, &rita, hosts("198.51.100", 20)).await,
        (10, 10)
    );
    let v6 = (1..=20).map(|i| format!("2001:db8:77:{i:x}::1"));
    assert_eq!(guesses(&app, &mal, v6).await, (10, 10));
    assert_eq!(app.throttled("user_code_network").await, Some(20.0));
    assert_eq!(app.throttled("user_code_overall").await, Some(0.0));
    // Those 20 attempts left most of the overall budget: a newcomer elsewhere pairs as usual.
    sell(&app, "SN-9301", "C-100", false, None).await;
    let (_, _, user_code) = requesting(&app, "SN-9301").await;
    let result = app
        .ctx
        .ceremony
        .look_up(&olivia, &user_code, Some("203.0.113.9"))
        .await;
    assert!(result.is_ok(), "{result:?}");
}

async fn addresses_that_paired_before_go_on_pairing_while_the_overall_budget_is_spent(
    backend: Backend,
) {
    let app = TestApp::builder(backend)
        .config(SMALL_BUDGETS)
        .start()
        .await;
    let acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let olivia = session_of(&app, &acme.owner).await;
    let ceremony = &app.ctx.ceremony;
    // Attempts are counted in ten-minute windows, and the clock starts at the wall-clock time:
    // start at the beginning of a window, so that the office's look-up, its approval 30 s later
    // and the guesses all spend one window's budget, wherever in a window the test began.
    app.advance(600 - app.now().rem_euclid(600));
    for serial in ["SN-9401", "SN-9402", "SN-9403", "SN-9404"] {
        sell(&app, serial, "C-100", false, None).await;
    }
    // The office pairs a device (a look-up and an approval: two attempts of the overall budget).
    let (_, _, user_code) = requesting(&app, "SN-9401").await;
    let proof = ceremony
        .look_up(&olivia, &user_code, Some(OFFICE))
        .await
        .unwrap()
        .proof;
    app.advance(30);
    let shown = Shown {
        user_code: &user_code,
        proof: &proof,
    };
    let approval = ceremony
        .approve(&olivia, shown, &acme.owner.code(), None, Some(OFFICE))
        .await;
    assert!(
        matches!(approval, Ok(Approval::Paired { .. })),
        "{approval:?}"
    );

    // Guessing from four networks, within each network's budget, spends the overall budget:
    // the protection against spread-out guessing holds.
    let (rita, mal) = attackers(&app).await;
    let (a, b) = (
        guesses(
            &app,
            &rita,
            hosts("198.51.100", 10).chain(hosts("198.18.0", 10)),
        )
        .await,
        guesses(
            &app,
            &mal,
            hosts("198.18.1", 10).chain(hosts("203.0.113", 10)),
        )
        .await,
    );
    assert_eq!((a.0 + b.0, a.1 + b.1), (28, 12), "{a:?} {b:?}");
    assert_eq!(app.throttled("user_code_overall").await, Some(12.0));
    assert_eq!(app.throttled("user_code_network").await, Some(0.0));

    // Newcomers wait, even with a right code; the office goes on pairing.
    let (_, _, user_code) = requesting(&app, "SN-9402").await;
    let newcomer = ceremony
        .look_up(&olivia, &user_code, Some("100.64.1.1"))
        .await;
    assert!(
        matches!(newcomer, Err(PairingError::Throttled { .. })),
        "{newcomer:?}"
    );
    let office = ceremony.look_up(&olivia, &user_code, Some(OFFICE)).await;
    assert!(office.is_ok(), "{office:?}");

    // The next window starts afresh for everyone.
    app.advance(600);
    let (_, _, user_code) = requesting(&app, "SN-9403").await;
    let newcomer = ceremony
        .look_up(&olivia, &user_code, Some("100.64.1.1"))
        .await;
    assert!(newcomer.is_ok(), "{newcomer:?}");

    // An address is proven for 30 days after its last approval; then it is a newcomer again.
    app.advance(31 * 86_400);
    guesses(
        &app,
        &rita,
        hosts("198.51.100", 10).chain(hosts("198.18.0", 10)),
    )
    .await;
    guesses(
        &app,
        &mal,
        hosts("198.18.1", 10).chain(hosts("203.0.113", 10)),
    )
    .await;
    let (_, _, user_code) = requesting(&app, "SN-9404").await;
    let office = ceremony.look_up(&olivia, &user_code, Some(OFFICE)).await;
    assert!(
        matches!(office, Err(PairingError::Throttled { .. })),
        "{office:?}"
    );
}
