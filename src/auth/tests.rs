//! Unit tests for the auth state machine, with a collecting Outbound and a fake verifier.

use super::*;
use crate::algo::host_key::{HostKeyAlg, VerifyError};
use crate::auth::msgs::tests::request;
use crate::service::VecOutbound;
use crate::wire::{Reader, Writer};

const SID: &[u8] = b"session-id-H";

fn key_blob(t: &str, fill: u8) -> Vec<u8> {
    let mut v = Vec::new();
    Writer::new(&mut v).string(t.as_bytes()).string(&[fill; 32]);
    v
}

fn sig_blob(alg: &str, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    Writer::new(&mut v).string(alg.as_bytes()).string(body);
    v
}

/// Accepts a signature iff its body equals the signed data: a stand-in that still proves the
/// data is exactly what RFC 4252 §7 says.
fn fake_verify(_alg: HostKeyAlg, _key: &[u8], data: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let mut r = Reader::new(sig);
    let _ = r.string("alg");
    let body = r.string("body").map_err(|_| VerifyError::BadSignatureFormat)?;
    if body == data {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

fn accept_all(_: HostKeyAlg, _: &[u8], _: &[u8], _: &[u8]) -> Result<(), VerifyError> {
    Ok(())
}

fn policy(methods: &str) -> AuthPolicy {
    AuthPolicy {
        sequences: policy::parse_auth_methods(methods).unwrap(),
        authorized_keys: Some("/keys/%u".into()),
        passwords: PasswordSource::File("/pw".into()),
        ..AuthPolicy::default()
    }
}

fn cx(p: &AuthPolicy) -> AuthContext<'_> {
    AuthContext { policy: p, session_id: SID, encrypted: true }
}

fn auth() -> Auth {
    Auth::with_verifier("10.0.0.7".parse().unwrap(), fake_verify)
}

fn pw_req(user: &str, pw: &[u8]) -> Vec<u8> {
    request(user, "ssh-connection", "password", |w| {
        w.bool(false).string(pw);
    })
}

fn pk_req(user: &str, alg: &str, key: &[u8], sig: Option<&[u8]>) -> Vec<u8> {
    request(user, "ssh-connection", "publickey", |w| {
        w.bool(sig.is_some()).string(alg.as_bytes()).string(key);
        if let Some(s) = sig {
            w.string(s);
        }
    })
}

fn failure_of(msg: &[u8]) -> (String, bool) {
    let mut r = Reader::new(msg);
    assert_eq!(r.u8("n").unwrap(), msg_no::USERAUTH_FAILURE);
    let list = String::from_utf8(r.string("l").unwrap().to_vec()).unwrap();
    (list, r.bool("p").unwrap())
}

/// Runs a signature-verification job inline (the pool's part) and feeds its result back.
fn verified(
    a: &mut Auth,
    p: &AuthPolicy,
    out: &mut VecOutbound,
    r: Result<AuthOutcome, ServiceError>,
) -> Result<AuthOutcome, ServiceError> {
    match r? {
        AuthOutcome::Job(AuthJob::VerifySignature(check)) => {
            assert!(a.is_waiting(), "no input while a signature is checked");
            a.handle_job_result(cx(p), out, AuthJobResult::Signature(check.run()))
        }
        other => Ok(other),
    }
}

fn authorized(blob: &[u8], options: KeyOptions) -> AuthorizedKey {
    AuthorizedKey { algorithm: "ssh-ed25519".into(), blob: blob.to_vec(), options }
}

#[test]
fn none_lists_methods_after_the_banner_once() {
    let p = AuthPolicy { banner: Some("welcome\r\n".into()), ..policy("publickey password") };
    let mut a = auth();
    let mut out = VecOutbound::default();
    let none = request("bob", "ssh-connection", "none", |_| {});
    assert!(matches!(a.handle_message(cx(&p), &mut out, &none).unwrap(), AuthOutcome::Continue));
    assert_eq!(out.numbers(), [msg_no::USERAUTH_BANNER, msg_no::USERAUTH_FAILURE]);
    assert_eq!(failure_of(&out.msgs[1]), ("publickey,password".into(), false));
    assert_eq!(a.failures(), 0, "the first none costs no try");
    out.take();
    a.handle_message(cx(&p), &mut out, &none).unwrap();
    assert_eq!(out.numbers(), [msg_no::USERAUTH_FAILURE], "banner only once");
    assert_eq!(a.failures(), 1);
}

#[test]
fn wrong_password_and_unknown_user_take_the_same_path() {
    let p = policy("password");
    let mut outs = Vec::new();
    for user in ["alice", "no-such-user"] {
        let mut a = auth();
        let mut out = VecOutbound::default();
        let job = a.handle_message(cx(&p), &mut out, &pw_req(user, b"wrong")).unwrap();
        let AuthOutcome::Job(AuthJob::CheckPassword(check)) = job else {
            panic!("expected a password job")
        };
        assert_eq!(check.user, user);
        assert!(matches!(check.source, PasswordSource::File(_)));
        assert!(a.is_waiting());
        assert!(out.msgs.is_empty(), "nothing is said before the check ran");
        a.handle_job_result(cx(&p), &mut out, AuthJobResult::Password(false)).unwrap();
        outs.push(out.take());
    }
    assert_eq!(outs[0], outs[1], "identical replies");
}

#[test]
fn password_success_then_later_requests_are_ignored() {
    let p = policy("password");
    let mut a = auth();
    let mut out = VecOutbound::default();
    a.handle_message(cx(&p), &mut out, &pw_req("alice", b"right")).unwrap();
    let r = a.handle_job_result(cx(&p), &mut out, AuthJobResult::Password(true)).unwrap();
    let AuthOutcome::Success { user, method } = r else { panic!("expected success") };
    assert_eq!((user.as_str(), method), ("alice", "password"));
    assert_eq!(out.numbers(), [msg_no::USERAUTH_SUCCESS]);
    out.take();
    // RFC 4252 §5.1: ignored after success, including a second SUCCESS-worthy request.
    let r = a.handle_message(cx(&p), &mut out, &pw_req("alice", b"right")).unwrap();
    assert!(matches!(r, AuthOutcome::Continue));
    assert!(out.msgs.is_empty());
}

#[test]
fn password_never_offered_or_taken_in_the_clear() {
    let p = policy("password publickey");
    let clear = AuthContext { encrypted: false, ..cx(&p) };
    let mut a = auth();
    let mut out = VecOutbound::default();
    let r = a.handle_message(clear, &mut out, &pw_req("alice", b"pw")).unwrap();
    assert!(matches!(r, AuthOutcome::Continue), "no job: refused outright");
    assert_eq!(failure_of(&out.msgs[0]).0, "publickey");
}

#[test]
fn client_sent_success_or_stray_messages_do_not_authenticate() {
    let p = policy("password");
    let mut a = auth();
    let mut out = VecOutbound::default();
    for msg in [msg_no::USERAUTH_SUCCESS, msg_no::USERAUTH_FAILURE, msg_no::USERAUTH_PK_OK] {
        assert!(a.handle_message(cx(&p), &mut out, &[msg]).is_err());
        assert!(!a.is_done());
    }
    // INFO_RESPONSE without an INFO_REQUEST.
    let mut v = Vec::new();
    Writer::new(&mut v).u8(msg_no::USERAUTH_INFO_RESPONSE).u32(1).string(b"pw");
    assert!(a.handle_message(cx(&p), &mut out, &v).is_err());
    assert!(out.msgs.is_empty());
}

#[test]
fn thousand_failures_end_at_the_limit_with_code_14() {
    let p = policy("password");
    let mut a = auth();
    let mut out = VecOutbound::default();
    let mut ended_at = None;
    for i in 1..=1000u32 {
        let r = a
            .handle_message(cx(&p), &mut out, &pw_req("alice", b"guess"))
            .and_then(|_| a.handle_job_result(cx(&p), &mut out, AuthJobResult::Password(false)));
        if let Err(e) = r {
            assert_eq!(e.reason, DisconnectReason::NoMoreAuthMethodsAvailable);
            assert_eq!(e.reason.code(), 14);
            ended_at = Some(i);
            break;
        }
    }
    assert_eq!(ended_at, Some(policy::DEFAULT_MAX_AUTH_TRIES));
    assert_eq!(out.msgs.len() as u32, policy::DEFAULT_MAX_AUTH_TRIES - 1);
}

#[test]
fn publickey_query_then_signature() {
    let p = policy("publickey");
    let key = key_blob("ssh-ed25519", 1);
    let mut a = auth();
    let mut out = VecOutbound::default();
    let r = a.handle_message(cx(&p), &mut out, &pk_req("bob", "ssh-ed25519", &key, None)).unwrap();
    let AuthOutcome::Job(AuthJob::LoadKeys { template, user }) = r else {
        panic!("expected key load")
    };
    assert_eq!((template.as_str(), user.as_str()), ("/keys/%u", "bob"));
    let opts = KeyOptions { permit_open: Some(vec!["db:5432".into()]), ..KeyOptions::default() };
    let keys = vec![authorized(&key, opts.clone())];
    a.handle_job_result(cx(&p), &mut out, AuthJobResult::Keys(Ok(keys.into()))).unwrap();
    assert_eq!(out.numbers(), [msg_no::USERAUTH_PK_OK]);
    out.take();

    // Signature over exactly the RFC 4252 §7 data (fake_verify compares it byte for byte).
    let signed = msgs::publickey_signed_data(SID, "bob", b"ssh-connection", "ssh-ed25519", &key);
    let bad = sig_blob("ssh-ed25519", b"something else");
    let r = a.handle_message(cx(&p), &mut out, &pk_req("bob", "ssh-ed25519", &key, Some(&bad)));
    verified(&mut a, &p, &mut out, r).unwrap();
    assert_eq!(out.numbers(), [msg_no::USERAUTH_FAILURE]);
    out.take();
    let good = sig_blob("ssh-ed25519", &signed);
    let r = a.handle_message(cx(&p), &mut out, &pk_req("bob", "ssh-ed25519", &key, Some(&good)));
    let r = verified(&mut a, &p, &mut out, r).unwrap();
    assert!(matches!(r, AuthOutcome::Success { method: "publickey", .. }));
    assert_eq!(out.numbers(), [msg_no::USERAUTH_SUCCESS]);
    assert_eq!(a.restrictions(), &opts, "the key's options travel with the login");
}

#[test]
fn only_the_key_that_verified_is_authorised() {
    // Go CVE-2024-45337: a PK_OK for key A must not authorise a later signature by key B.
    let p = policy("publickey");
    let key_a = key_blob("ssh-ed25519", 1);
    let key_b = key_blob("ssh-ed25519", 2);
    let mut a = Auth::with_verifier("10.0.0.7".parse().unwrap(), accept_all);
    let mut out = VecOutbound::default();
    a.handle_message(cx(&p), &mut out, &pk_req("bob", "ssh-ed25519", &key_a, None)).unwrap();
    a.handle_job_result(
        cx(&p),
        &mut out,
        AuthJobResult::Keys(Ok(vec![authorized(&key_a, KeyOptions::default())].into())),
    )
    .unwrap();
    assert_eq!(out.numbers(), [msg_no::USERAUTH_PK_OK]);
    out.take();
    let sig = sig_blob("ssh-ed25519", b"anything");
    let r = a
        .handle_message(cx(&p), &mut out, &pk_req("bob", "ssh-ed25519", &key_b, Some(&sig)))
        .unwrap();
    assert!(matches!(r, AuthOutcome::Continue));
    assert_eq!(out.numbers(), [msg_no::USERAUTH_FAILURE]);
    assert!(!a.is_done());
}

#[test]
fn from_option_and_sha1_and_type_mismatch_fail() {
    let p = policy("publickey");
    let ed = key_blob("ssh-ed25519", 1);
    let rsa = key_blob("ssh-rsa", 3);
    let mut a = Auth::with_verifier("192.0.2.9".parse().unwrap(), accept_all);
    let mut out = VecOutbound::default();
    // ssh-rsa (SHA-1) is refused before any key lookup.
    let r = a.handle_message(cx(&p), &mut out, &pk_req("bob", "ssh-rsa", &rsa, None)).unwrap();
    assert!(matches!(r, AuthOutcome::Continue));
    assert_eq!(out.numbers(), [msg_no::USERAUTH_FAILURE]);
    // Key type and algorithm must agree.
    a.handle_message(cx(&p), &mut out, &pk_req("bob", "rsa-sha2-256", &ed, None)).unwrap();
    assert_eq!(out.numbers().len(), 2);
    // from= not matching this peer: the key is as good as absent.
    let opts = KeyOptions { from: Some(vec!["10.0.0.0/8".into()]), ..KeyOptions::default() };
    let r = a.handle_message(cx(&p), &mut out, &pk_req("bob", "ssh-ed25519", &ed, None)).unwrap();
    assert!(matches!(r, AuthOutcome::Job(_)));
    a.handle_job_result(
        cx(&p),
        &mut out,
        AuthJobResult::Keys(Ok(vec![authorized(&ed, opts)].into())),
    )
    .unwrap();
    assert_eq!(out.numbers().last(), Some(&msg_no::USERAUTH_FAILURE));
    // rsa-sha2-512 with an ssh-rsa key is fine (RFC 8332).
    let sig = sig_blob("rsa-sha2-512", b"x");
    let keys_rsa = AuthorizedKey {
        algorithm: "ssh-rsa".into(),
        blob: rsa.clone(),
        options: KeyOptions::default(),
    };
    let mut b = Auth::with_verifier("192.0.2.9".parse().unwrap(), accept_all);
    b.handle_message(cx(&p), &mut out, &pk_req("bob", "rsa-sha2-512", &rsa, Some(&sig))).unwrap();
    let r = b.handle_job_result(cx(&p), &mut out, AuthJobResult::Keys(Ok(vec![keys_rsa].into())));
    let r = verified(&mut b, &p, &mut out, r).unwrap();
    assert!(matches!(r, AuthOutcome::Success { .. }));
}

#[test]
fn partial_success_sequence_publickey_then_password() {
    let p = policy("publickey,password");
    let key = key_blob("ssh-ed25519", 1);
    let mut a = Auth::with_verifier("10.0.0.7".parse().unwrap(), accept_all);
    let mut out = VecOutbound::default();
    // Password first is not allowed by the sequence.
    a.handle_message(cx(&p), &mut out, &pw_req("bob", b"pw")).unwrap();
    assert_eq!(failure_of(&out.take()[0]), ("publickey".into(), false));
    let sig = sig_blob("ssh-ed25519", b"s");
    a.handle_message(cx(&p), &mut out, &pk_req("bob", "ssh-ed25519", &key, Some(&sig))).unwrap();
    let r = a.handle_job_result(
        cx(&p),
        &mut out,
        AuthJobResult::Keys(Ok(vec![authorized(&key, KeyOptions::default())].into())),
    );
    let r = verified(&mut a, &p, &mut out, r);
    assert!(matches!(r.unwrap(), AuthOutcome::Continue));
    assert_eq!(failure_of(&out.take()[0]), ("password".into(), true), "partial success");
    let r = a.handle_message(cx(&p), &mut out, &pw_req("bob", b"pw")).unwrap();
    assert!(matches!(r, AuthOutcome::Job(_)));
    let r = a.handle_job_result(cx(&p), &mut out, AuthJobResult::Password(true)).unwrap();
    assert!(matches!(r, AuthOutcome::Success { method: "password", .. }));
}

#[test]
fn keyboard_interactive_single_prompt() {
    let p = policy("keyboard-interactive");
    let mut a = auth();
    let mut out = VecOutbound::default();
    let req = request("carol", "ssh-connection", "keyboard-interactive", |w| {
        w.string(b"").string(b"");
    });
    a.handle_message(cx(&p), &mut out, &req).unwrap();
    assert_eq!(out.numbers(), [msg_no::USERAUTH_INFO_REQUEST]);
    let mut v = Vec::new();
    Writer::new(&mut v).u8(msg_no::USERAUTH_INFO_RESPONSE).u32(1).string(b"pw");
    let r = a.handle_message(cx(&p), &mut out, &v).unwrap();
    let AuthOutcome::Job(AuthJob::CheckPassword(c)) = r else { panic!("expected a password job") };
    assert_eq!((c.user.as_str(), c.password.as_slice()), ("carol", &b"pw"[..]));
    let r = a.handle_job_result(cx(&p), &mut out, AuthJobResult::Password(true)).unwrap();
    assert!(matches!(r, AuthOutcome::Success { method: "keyboard-interactive", .. }));
}

#[test]
fn wrong_service_or_user_change_disconnects() {
    let p = policy("password");
    let mut a = auth();
    let mut out = VecOutbound::default();
    let e = a
        .handle_message(cx(&p), &mut out, &request("bob", "ssh-userauth", "none", |_| {}))
        .unwrap_err();
    assert_eq!(e.reason, DisconnectReason::ServiceNotAvailable);
    let mut a = auth();
    a.handle_message(cx(&p), &mut out, &request("bob", "ssh-connection", "none", |_| {})).unwrap();
    let e = a
        .handle_message(cx(&p), &mut out, &request("eve", "ssh-connection", "none", |_| {}))
        .unwrap_err();
    assert_eq!(e.reason, DisconnectReason::ProtocolError);
}

#[test]
fn messages_while_a_job_runs_are_refused() {
    let p = policy("password");
    let mut a = auth();
    let mut out = VecOutbound::default();
    a.handle_message(cx(&p), &mut out, &pw_req("bob", b"x")).unwrap();
    assert!(a.handle_message(cx(&p), &mut out, &pw_req("bob", b"y")).is_err());
}

#[test]
fn stale_job_results_are_ignored() {
    let p = policy("password");
    let mut a = auth();
    let mut out = VecOutbound::default();
    let r = a.handle_job_result(cx(&p), &mut out, AuthJobResult::Password(true)).unwrap();
    assert!(matches!(r, AuthOutcome::Continue));
    assert!(!a.is_done() && out.msgs.is_empty());
}

/// An independent verifier (ssh-key's), so the signed data is checked against a real signature
/// before `algo::host_key::verify` exists.
fn sshkey_verify(_: HostKeyAlg, key: &[u8], data: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    use signature::Verifier;
    let pk = ssh_key::PublicKey::from_bytes(key).map_err(|_| VerifyError::BadKey)?;
    let sig = ssh_key::Signature::try_from(sig).map_err(|_| VerifyError::BadSignatureFormat)?;
    Verifier::verify(&pk, data, &sig).map_err(|_| VerifyError::Mismatch)
}

/// A fresh ed25519 key: (public blob, SSH signature blob over `data`).
fn ed25519_sign(data_for: impl FnOnce(&[u8]) -> Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    use signature::Signer;
    let private =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap();
    let blob = private.public_key().to_bytes().unwrap();
    let sig: ssh_key::Signature = Signer::sign(&private, &data_for(&blob));
    (blob, Vec::<u8>::try_from(sig).unwrap())
}

/// Runs one signed publickey request for "bob" whose authorized key is `blob`.
fn signed_login(verify: VerifyFn, blob: &[u8], sig: &[u8]) -> (AuthOutcome, VecOutbound) {
    let p = policy("publickey");
    let mut a = Auth::with_verifier("10.0.0.7".parse().unwrap(), verify);
    let mut out = VecOutbound::default();
    let req = pk_req("bob", "ssh-ed25519", blob, Some(sig));
    a.handle_message(cx(&p), &mut out, &req).unwrap();
    let keys = vec![authorized(blob, KeyOptions::default())];
    let r = a.handle_job_result(cx(&p), &mut out, AuthJobResult::Keys(Ok(keys.into())));
    let r = verified(&mut a, &p, &mut out, r);
    (r.unwrap(), out)
}

#[test]
fn real_ed25519_signature_over_the_rfc_4252_blob() {
    let signed = |blob: &[u8]| {
        msgs::publickey_signed_data(SID, "bob", b"ssh-connection", "ssh-ed25519", blob)
    };
    let (blob, sig) = ed25519_sign(signed);
    let (r, out) = signed_login(sshkey_verify, &blob, &sig);
    assert!(matches!(r, AuthOutcome::Success { .. }), "{r:?}");
    assert_eq!(out.numbers(), [msg_no::USERAUTH_SUCCESS]);
    // Signed under another session id (a replay from another connection): refused.
    let (blob, sig) = ed25519_sign(|b| {
        msgs::publickey_signed_data(b"other-session", "bob", b"ssh-connection", "ssh-ed25519", b)
    });
    let (r, out) = signed_login(sshkey_verify, &blob, &sig);
    assert!(matches!(r, AuthOutcome::Continue));
    assert_eq!(out.numbers(), [msg_no::USERAUTH_FAILURE]);
}

#[test]

fn real_verifier_accepts_a_real_signature_and_rejects_a_forged_one() {
    let (blob, sig) = ed25519_sign(|blob| {
        msgs::publickey_signed_data(SID, "bob", b"ssh-connection", "ssh-ed25519", blob)
    });
    let (r, _) = signed_login(publickey::real_verify, &blob, &sig);
    assert!(matches!(r, AuthOutcome::Success { .. }), "{r:?}");
    let forged = sig_blob("ssh-ed25519", &[0u8; 64]);
    let (r, out) = signed_login(publickey::real_verify, &blob, &forged);
    assert!(matches!(r, AuthOutcome::Continue));
    assert_eq!(out.numbers(), [msg_no::USERAUTH_FAILURE]);
}

#[test]
fn unknown_user_publickey_takes_the_same_path() {
    // The key lookup for a user with no file returns no keys, exactly like a wrong key.
    let p = policy("publickey");
    let key = key_blob("ssh-ed25519", 1);
    let other = key_blob("ssh-ed25519", 9);
    let mut outs = Vec::new();
    for (user, keys) in
        [("alice", vec![authorized(&other, KeyOptions::default())]), ("ghost", vec![])]
    {
        let mut a = Auth::with_verifier("10.0.0.7".parse().unwrap(), accept_all);
        let mut out = VecOutbound::default();
        let r =
            a.handle_message(cx(&p), &mut out, &pk_req(user, "ssh-ed25519", &key, None)).unwrap();
        assert!(matches!(r, AuthOutcome::Job(AuthJob::LoadKeys { .. })));
        a.handle_job_result(cx(&p), &mut out, AuthJobResult::Keys(Ok(keys.into()))).unwrap();
        outs.push(out.take());
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0].len(), 1);
}

#[test]
fn overlong_user_name_is_code_15() {
    let p = policy("password");
    let mut a = auth();
    let mut out = VecOutbound::default();
    let long = "u".repeat(msgs::MAX_USER_LEN + 1);
    let e = a
        .handle_message(cx(&p), &mut out, &request(&long, "ssh-connection", "none", |_| {}))
        .unwrap_err();
    assert_eq!(e.reason, DisconnectReason::IllegalUserName);
}

#[test]
fn random_input_never_panics() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let p = policy("publickey,password keyboard-interactive");
    let key = key_blob("ssh-ed25519", 1);
    let sig = sig_blob("ssh-ed25519", b"x");
    let valid = [
        pw_req("bob", b"pw"),
        pk_req("bob", "ssh-ed25519", &key, Some(&sig)),
        pk_req("bob", "ssh-ed25519", &key, None),
        request("bob", "ssh-connection", "keyboard-interactive", |w| {
            w.string(b"").string(b"");
        }),
        request("bob", "ssh-connection", "none", |_| {}),
    ];
    let mut a = Auth::with_verifier("10.0.0.7".parse().unwrap(), accept_all);
    let mut out = VecOutbound::default();
    for _ in 0..20_000 {
        let r = next();
        let mut m = valid[(r >> 8) as usize % valid.len()].clone();
        if r % 2 == 0 {
            let i = (r >> 16) as usize % m.len();
            m[i] = (r >> 24) as u8;
        }
        if r % 5 == 0 {
            m.truncate((r >> 32) as usize % (m.len() + 1));
        }
        let res = a.handle_message(cx(&p), &mut out, &m).and_then(|o| match o {
            AuthOutcome::Job(AuthJob::LoadKeys { .. }) => a.handle_job_result(
                cx(&p),
                &mut out,
                AuthJobResult::Keys(Ok(vec![authorized(&key, KeyOptions::default())].into())),
            ),
            AuthOutcome::Job(AuthJob::CheckPassword(_)) => {
                a.handle_job_result(cx(&p), &mut out, AuthJobResult::Password(r % 3 == 0))
            }
            o => Ok(o),
        });
        if res.is_err() || a.is_done() {
            a = Auth::with_verifier("10.0.0.7".parse().unwrap(), accept_all);
        }
        assert!(a.failures() < policy::DEFAULT_MAX_AUTH_TRIES);
        out.msgs.clear();
    }
}

/// An unknown user gets the same replies as a wrong password; only `invalid_user()` (the
/// penalty kind) tells them apart, and only when no lookup found the user.
#[test]
fn unknown_user_is_reported_for_the_penalty_only() {
    let p = policy("password");
    let mut replies = Vec::new();
    for (result, invalid) in
        [(AuthJobResult::UnknownUser, true), (AuthJobResult::Password(false), false)]
    {
        let mut a = auth();
        let mut out = VecOutbound::default();
        a.handle_message(cx(&p), &mut out, &pw_req("mallory", b"x")).unwrap();
        assert!(!a.invalid_user(), "nothing known before the lookup");
        a.handle_job_result(cx(&p), &mut out, result).unwrap();
        assert_eq!(a.invalid_user(), invalid);
        assert_eq!(a.failures(), 1);
        replies.push(out.take());
    }
    assert_eq!(replies[0], replies[1], "identical replies");

    // A later lookup that finds the user (a key file) clears it.
    let mut a = auth();
    let mut out = VecOutbound::default();
    a.handle_message(cx(&p), &mut out, &pw_req("mallory", b"x")).unwrap();
    a.handle_job_result(cx(&p), &mut out, AuthJobResult::UnknownUser).unwrap();
    a.handle_message(cx(&p), &mut out, &pw_req("mallory", b"y")).unwrap();
    a.handle_job_result(cx(&p), &mut out, AuthJobResult::Password(false)).unwrap();
    assert!(!a.invalid_user());
}

/// A queued check holds what the peer sent (password, key, signed data, signature): the
/// runtime charges that to the memory budget while the job waits or runs.
#[test]
fn jobs_report_the_peer_bytes_they_hold() {
    let job = AuthJob::CheckPassword(PasswordCheck {
        source: PasswordSource::None,
        user: "u".repeat(100),
        password: vec![7; 20_000],
    });
    assert!(job.held_bytes() >= 20_100);
    let check = publickey::SignatureCheck {
        verify: accept_all,
        alg: publickey::signature_alg("ssh-ed25519", &key_blob("ssh-ed25519", 1), &["ssh-ed25519"])
            .expect("ed25519 is accepted"),
        key: vec![1; 1000],
        signed: vec![2; 30_000],
        signature: vec![3; 3000],
        no_touch_required: false,
        verify_required: false,
    };
    assert!(AuthJob::VerifySignature(check).held_bytes() >= 34_000);
}
