//! Proof that a session was shown a pairing request. Approve and deny act only on a request
//! whose confirmation page this session displayed: the page carries, in a hidden field, an HMAC
//! over the session's identity and the flow's id, and a decision must bring it back.
//!
//! A MAC rather than a stored row: nothing to write or sweep, any instance can check it, it
//! dies with the session (every sign-in starts a new one) and with the flow (a new request for
//! the same device is a new flow), and it tells its bearer nothing. A look-up, which issues it,
//! counts an attempt, so a proof cannot be had for a guessed code without paying for the guess;
//! and a proof copied into another session is worthless there.

use aws_lc_rs::hmac;

use crate::oauth::master_key::MasterKey;
use crate::verifier::jose::b64;

/// Issues and checks the proofs, under a key derived from the master key.
#[derive(Clone)]
pub struct ShownProofs(hmac::Key);

impl ShownProofs {
    /// The proofs under `derive("pairing-shown")`.
    pub fn new(master: &MasterKey) -> Self {
        Self(hmac::Key::new(
            hmac::HMAC_SHA256,
            &master.derive("pairing-shown"),
        ))
    }

    /// The proof that `session` (its id hash) was shown flow `flow_id`.
    pub fn issue(&self, session: &str, flow_id: i64) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(session.as_bytes());
        ctx.update(&[0]);
        ctx.update(&flow_id.to_be_bytes());
        b64(ctx.sign())
    }

    /// Whether `proof` is the one [`Self::issue`] gives for this session and flow (in constant
    /// time).
    pub fn check(&self, session: &str, flow_id: i64, proof: &str) -> bool {
        let expected = self.issue(session, flow_id);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), proof.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_for_its_session_and_flow_only() {
        let proofs = ShownProofs::new(&MasterKey::from_bytes(&[7; 32]));
        let proof = proofs.issue("session-a", 41);
        assert!(proofs.check("session-a", 41, &proof));
        assert!(!proofs.check("session-b", 41, &proof));
        assert!(!proofs.check("session-a", 42, &proof));
        assert!(!proofs.check("session-a", 41, ""));
    }
}
