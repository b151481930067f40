use super::*;
use crate::proxy::agent::{SSH_AGENTC_SIGN_REQUEST, SSH_AGENT_RSA_SHA2_512};
use crate::proxy::fake_down::FakeDown;
use crate::wire::Writer;

fn now() -> Instant {
    static T: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *T.get_or_init(Instant::now)
}

/// The first agent channel the fake user side opens.
const AGENT: ChannelId = ChannelId(201);

/// The upstream core: the keys tried and the signatures handed back.
#[derive(Default)]
struct FakeUp {
    tried: Vec<(Vec<u8>, &'static str)>,
    signed: Vec<Result<Vec<u8>, String>>,
}

impl Login for FakeUp {
    fn try_key(&mut self, user: &str, key: Arc<dyn UserSigner>) -> Result<(), UseError> {
        assert_eq!(user, "bob");
        self.tried.push((key.public_blob().to_vec(), key.algorithm().name()));
        Ok(())
    }
    fn signed(&mut self, sig: Result<Vec<u8>, String>) {
        self.signed.push(sig);
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn blob(kind: &str, tail: u8) -> Vec<u8> {
    let mut b = Vec::new();
    Writer::new(&mut b).string(kind.as_bytes()).string(&[tail; 32]);
    b
}

fn identities(keys: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Vec::new();
    let mut wr = Writer::new(&mut w);
    wr.u8(12).u32(keys.len() as u32);
    for k in keys {
        wr.string(k).string(b"comment");
    }
    frame(&w)
}

fn signature(alg: &str) -> (Vec<u8>, Vec<u8>) {
    let mut sig = Vec::new();
    Writer::new(&mut sig).string(alg.as_bytes()).string(&[9; 64]);
    let mut s = Vec::new();
    Writer::new(&mut s).u8(14).string(&sig);
    (sig, frame(&s))
}

/// A login that listed `keys` from the agent (so is trying the first usable one).
fn listed(keys: &[Vec<u8>]) -> (AgentLogin, FakeDown, FakeUp) {
    let mut l = AgentLogin::new("bob");
    let mut d = FakeDown { agent: true, window: 1 << 20, ..FakeDown::default() };
    let mut up = FakeUp::default();
    l.start(&mut d).unwrap();
    l.opened(&mut d, now()).unwrap();
    assert_eq!(d.out, [0, 0, 0, 1, 11], "REQUEST_IDENTITIES");
    d.out.clear();
    d.inbound = identities(keys);
    l.pump(&mut d, &mut up, now()).unwrap();
    (l, d, up)
}

#[test]
fn waits_for_forwarding_then_lists_and_signs_through_the_agent() {
    let mut l = AgentLogin::new("bob");
    let mut d = FakeDown { window: 3, ..FakeDown::default() };
    let mut up = FakeUp::default();
    // The user has not forwarded an agent yet: the login waits.
    l.start(&mut d).unwrap();
    assert!(l.waiting_for_agent());
    assert!(d.log.is_empty());
    d.agent = true;
    l.forwarding(&mut d).unwrap();
    assert_eq!(d.log, ["open agent"]);
    assert!(l.owns(AGENT) && !l.waiting_for_agent());
    // Nothing goes out before the user confirms the channel; then within its window.
    assert!(d.out.is_empty());
    l.opened(&mut d, now()).unwrap();
    assert_eq!(d.out, [0, 0, 0]);
    d.window = 100;
    l.pump(&mut d, &mut up, now()).unwrap();
    assert_eq!(d.out, [0, 0, 0, 1, 11]);
    d.out.clear();
    // The answer in two pieces: an RSA key (signs rsa-sha2-512), a certificate (skipped).
    let rsa = blob("ssh-rsa", 1);
    let all = identities(&[blob("ssh-ed25519-cert-v01@openssh.com", 2), rsa.clone()]);
    d.inbound = all[..7].to_vec();
    l.pump(&mut d, &mut up, now()).unwrap();
    assert!(up.tried.is_empty() && d.inbound.is_empty());
    d.inbound = all[7..].to_vec();
    l.pump(&mut d, &mut up, now()).unwrap();
    assert_eq!(up.tried, [(rsa.clone(), "rsa-sha2-512")]);
    // The core's sign request becomes a SIGN_REQUEST with the SHA-512 flag; the agent's
    // signature goes back to the core.
    let key = AgentKey { public_blob: rsa.clone(), alg: HostKeyAlg::RsaSha512 };
    l.sign(&key, b"to be signed", &mut d, now()).unwrap();
    let mut r = Reader::new(&d.out[4..]);
    assert_eq!(r.u8("t").unwrap(), SSH_AGENTC_SIGN_REQUEST);
    assert_eq!(r.string("key").unwrap(), &rsa[..]);
    assert_eq!(r.string("data").unwrap(), b"to be signed");
    assert_eq!(r.u32("flags").unwrap(), SSH_AGENT_RSA_SHA2_512);
    let (sig, reply) = signature("rsa-sha2-512");
    d.inbound = reply;
    l.pump(&mut d, &mut up, now()).unwrap();
    assert_eq!(up.signed, [Ok(sig)]);
    // Logged in: the agent channel is closed.
    l.finish(&mut d);
    assert_eq!(d.log.last().unwrap(), "close 201");
    assert!(!l.owns(AGENT));
}

#[test]
fn each_key_is_tried_then_every_refusal_is_reported() {
    let keys: Vec<Vec<u8>> = (0..10).map(|i| blob("ssh-ed25519", i)).collect();
    let (mut l, _d, mut up) = listed(&keys);
    assert_eq!(up.tried.len(), 1);
    for _ in 1..MAX_KEYS_TRIED {
        l.auth_failed(&mut up).unwrap();
    }
    assert_eq!(up.tried.len(), MAX_KEYS_TRIED, "bounded");
    assert_eq!(up.tried[1].0, keys[1], "in the agent's order");
    assert_eq!(l.auth_failed(&mut up), Err(AgentLoginError::Refused { tried: MAX_KEYS_TRIED }));
}

#[test]
fn a_refused_signature_fails_that_attempt_only() {
    let (mut l, mut d, mut up) = listed(&[blob("ssh-ed25519", 1), blob("ssh-ed25519", 2)]);
    let key = AgentKey { public_blob: blob("ssh-ed25519", 1), alg: HostKeyAlg::Ed25519 };
    l.sign(&key, b"x", &mut d, now()).unwrap();
    d.inbound = frame(&[5]);
    l.pump(&mut d, &mut up, now()).unwrap();
    assert!(matches!(up.signed[..], [Err(_)]));
    l.auth_failed(&mut up).unwrap();
    assert_eq!(up.tried.len(), 2);
}

#[test]
fn no_agent_no_keys_and_hostile_agents_end_the_login() {
    // Never forwarded: a session start says so.
    let mut l = AgentLogin::new("bob");
    let mut d = FakeDown::default();
    assert_eq!(l.session_started(&d), Err(AgentLoginError::NoAgent), "before the key exchange");
    l.start(&mut d).unwrap();
    assert_eq!(l.session_started(&d), Err(AgentLoginError::NoAgent));
    d.agent = true;
    assert_eq!(l.session_started(&d), Ok(()));
    // The user refuses the agent channel, or closes it mid-login.
    l.start(&mut d).unwrap();
    assert_eq!(l.channel_gone(), Err(AgentLoginError::NoAgent));
    // No usable key; the agent refuses to list.
    let mut l = AgentLogin::new("bob");
    let mut d = FakeDown { agent: true, window: 100, ..FakeDown::default() };
    let mut up = FakeUp::default();
    l.start(&mut d).unwrap();
    l.opened(&mut d, now()).unwrap();
    d.inbound = identities(&[blob("sk-ssh-ed25519@openssh.com", 1)]);
    assert_eq!(l.pump(&mut d, &mut up, now()), Err(AgentLoginError::NoKeys));
    let mut l = AgentLogin::new("bob");
    l.start(&mut d).unwrap();
    l.opened(&mut d, now()).unwrap();
    d.inbound = frame(&[5]);
    assert_eq!(l.pump(&mut d, &mut up, now()), Err(AgentLoginError::NoKeys));
    // A frame past the bound, and a signature nobody asked for: errors, nothing buffered.
    let mut l = AgentLogin::new("bob");
    l.start(&mut d).unwrap();
    l.opened(&mut d, now()).unwrap();
    d.inbound = vec![0x7f, 0xff, 0xff, 0xff, 12];
    assert!(matches!(l.pump(&mut d, &mut up, now()), Err(AgentLoginError::Agent(_))));
    let (mut l, mut d, mut up) = listed(&[blob("ssh-ed25519", 1)]);
    d.inbound = signature("ssh-ed25519").1;
    assert!(matches!(l.pump(&mut d, &mut up, now()), Err(AgentLoginError::Agent(_))));
    assert!(up.signed.is_empty());
}
