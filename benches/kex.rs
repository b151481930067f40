//! Key exchange and host-key costs per operation, next to the raw ring primitives they wrap.
//!
//! `server_agree` is what one handshake costs the crypto pool (validate the client's value, our
//! ephemeral, K); the client's value is made once outside the loop.

use criterion::{criterion_group, criterion_main, Criterion};
use ring::{agreement, rand::SystemRandom, signature};
use sshfront::algo::host_key::{verify, HostKeyAlg, HostKeyPair, KeyKind};
use sshfront::algo::kex::{self, gex::GexGroups, ClientEphemeral, KexMethod};
use std::hint::black_box;
use std::time::Duration;

fn server_agree(c: &mut Criterion) {
    let gex = GexGroups::builtin();
    let mut g = c.benchmark_group("server_agree");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let mut done = Vec::new();
    for alg in kex::ALL {
        // One bench per distinct computation (the @openssh.com / @libssh.org aliases and the
        // sha1 variants cost the same).
        let key = format!("{:?}", alg.method);
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        let group = match alg.method {
            KexMethod::Gex => gex.groups.first(),
            _ => None,
        };
        let client =
            ClientEphemeral::generate(alg.method, group, &mut sshfront::algo::SystemRng).unwrap();
        let public = client.public().to_vec();
        let label = if alg.method == KexMethod::Gex {
            format!("{} (2048)", alg.name)
        } else {
            alg.name.to_string()
        };
        g.bench_function(label, |b| {
            b.iter(|| {
                kex::server_agree(
                    alg.method,
                    group,
                    black_box(&public),
                    &mut sshfront::algo::SystemRng,
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

fn host_keys(c: &mut Criterion) {
    let h = [7u8; 32];
    let mut g = c.benchmark_group("host_key");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let kinds = [
        (KeyKind::Ed25519, HostKeyAlg::Ed25519),
        (KeyKind::EcdsaP256, HostKeyAlg::EcdsaP256),
        (KeyKind::EcdsaP384, HostKeyAlg::EcdsaP384),
        (KeyKind::EcdsaP521, HostKeyAlg::EcdsaP521),
        (KeyKind::Rsa { bits: 3072 }, HostKeyAlg::RsaSha512),
        (KeyKind::Rsa { bits: 3072 }, HostKeyAlg::SshRsa),
    ];
    let mut ed = None;
    for (kind, alg) in kinds {
        let (pair, _) = HostKeyPair::generate(kind).unwrap();
        g.bench_function(format!("sign {}", alg.name()), |b| {
            b.iter(|| pair.sign(alg, black_box(&h), &mut sshfront::algo::SystemRng).unwrap())
        });
        if alg == HostKeyAlg::Ed25519 {
            ed = Some(pair);
        }
    }
    if let Some(pair) = ed {
        let sig = pair.sign(HostKeyAlg::Ed25519, &h, &mut sshfront::algo::SystemRng).unwrap();
        g.bench_function("verify ssh-ed25519", |b| {
            b.iter(|| verify(HostKeyAlg::Ed25519, pair.public_blob(), black_box(&h), &sig).unwrap())
        });
    }
    g.finish();
}

fn raw_ring(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let mut g = c.benchmark_group("raw_ring");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let peer = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng).unwrap();
    let peer_pub = peer.compute_public_key().unwrap().as_ref().to_vec();
    g.bench_function("x25519 keygen+agree", |b| {
        b.iter(|| {
            let k = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng).unwrap();
            let p = agreement::UnparsedPublicKey::new(&agreement::X25519, black_box(&peer_pub));
            agreement::agree_ephemeral(k, &p, |s| s[0]).unwrap()
        })
    });
    let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    g.bench_function("ed25519 sign", |b| b.iter(|| kp.sign(black_box(&[7u8; 32]))));
    g.finish();
}

criterion_group!(benches, server_agree, host_keys, raw_ring);
criterion_main!(benches);
