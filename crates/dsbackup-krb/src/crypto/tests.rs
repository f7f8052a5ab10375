//! Published vectors: n-fold ([RFC 3961 §A.1]), AES string-to-key ([RFC 3962 Appendix B]),
//! AES-CTS ([RFC 3962 Appendix B]), RC4-HMAC's key (the NT hash of [MS-NLMP §4.2.1]); the
//! in-place, multi-buffer seal and open against a straightforward reference.

use proptest::prelude::*;

use super::*;

/// The plain way, one block at a time into new buffers: what `cts_encrypt`, `cts_decrypt`,
/// `UsageKeys::seal` and `UsageKeys::open` must agree with.
mod reference {
    use super::*;

    pub(super) fn cts_encrypt(key: &[u8], data: &[u8]) -> Vec<u8> {
        let cipher = AesKey::new(key).unwrap();
        let mut blocks = Vec::new();
        let mut prev = [0u8; AES_BLOCK];
        for chunk in data.chunks(AES_BLOCK) {
            let mut block = block_of(chunk);
            for (b, p) in block.iter_mut().zip(prev) {
                *b ^= p;
            }
            cipher.encrypt(&mut block);
            blocks.push(block);
            prev = block;
        }
        let last_len = data.len() - (blocks.len() - 1) * AES_BLOCK;
        let mut out = Vec::new();
        match blocks.as_slice() {
            [only] => out.extend_from_slice(only),
            [init @ .., before_last, last] => {
                for block in init {
                    out.extend_from_slice(block);
                }
                out.extend_from_slice(last);
                out.extend_from_slice(&before_last[..last_len]);
            }
            [] => unreachable!("at least one block"),
        }
        out
    }

    pub(super) fn cts_decrypt(key: &[u8], data: &[u8]) -> Vec<u8> {
        let cipher = AesKey::new(key).unwrap();
        let decrypt = |block: [u8; AES_BLOCK]| {
            let mut b = Block::from(block);
            cipher.decrypt(&mut b);
            <[u8; AES_BLOCK]>::from(b)
        };
        if data.len() == AES_BLOCK {
            return decrypt(block_of(data)).to_vec();
        }
        let tail_start = (data.len() - 1) / AES_BLOCK * AES_BLOCK - AES_BLOCK;
        let (head, tail) = data.split_at(tail_start);
        let mut out = Vec::new();
        let mut prev = [0u8; AES_BLOCK];
        for chunk in head.chunks(AES_BLOCK) {
            let c = block_of(chunk);
            let mut block = decrypt(c);
            for (b, p) in block.iter_mut().zip(prev) {
                *b ^= p;
            }
            out.extend_from_slice(&block);
            prev = c;
        }
        let (c_n, partial) = tail.split_at(AES_BLOCK);
        let d = partial.len();
        let dn = decrypt(block_of(c_n));
        let mut c_n1 = dn;
        c_n1[..d].copy_from_slice(partial);
        let mut p_n1 = decrypt(c_n1);
        for (b, p) in p_n1.iter_mut().zip(prev) {
            *b ^= p;
        }
        out.extend_from_slice(&p_n1);
        out.extend((0..d).map(|i| dn[i] ^ c_n1[i]));
        out
    }

    fn hmac_sha1_96(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        hmac_sha1(key, parts)[..HMAC_SHA1_96].to_vec()
    }

    /// The ciphertext of `confounder | data | tail` and the checksum of
    /// `confounder | before | data | after | tail`.
    pub(super) fn seal(
        key: &Key,
        usage: u32,
        confounder: &[u8],
        [before, data, after, tail]: [&[u8]; 4],
    ) -> (Vec<u8>, Vec<u8>) {
        let ke = key.derive(usage, 0xAA);
        let ki = key.derive(usage, 0x55);
        let mac = hmac_sha1_96(&ki, &[confounder, before, data, after, tail]);
        (cts_encrypt(&ke, &[confounder, data, tail].concat()), mac)
    }

    /// `confounder | data | tail` when the checksum verifies.
    pub(super) fn open(
        key: &Key,
        usage: u32,
        cipher: &[u8],
        mac: &[u8],
        [before, after]: [&[u8]; 2],
        data_len: usize,
    ) -> Option<Vec<u8>> {
        let ke = key.derive(usage, 0xAA);
        let ki = key.derive(usage, 0x55);
        let plain = cts_decrypt(&ke, cipher);
        let (confounder, rest) = plain.split_at(AES_BLOCK);
        let (data, tail) = rest.split_at(data_len);
        (hmac_sha1_96(&ki, &[confounder, before, data, after, tail]) == mac).then_some(plain)
    }
}

/// A run of `cts_encrypt` on `data` as one buffer.
fn encrypt_whole(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    cts_encrypt(&AesKey::new(key).unwrap(), &mut [&mut out]);
    out
}

/// A run of `cts_decrypt` on `data` as one buffer.
fn decrypt_whole(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    cts_decrypt(&AesKey::new(key).unwrap(), &mut [&mut out]);
    out
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

#[test]
fn nfold_matches_rfc3961() {
    for (input, bits, expected) in [
        ("012345", 64, "be072631276b1955"),
        ("password", 56, "78a07b6caf85fa"),
        ("Rough Consensus, and Running Code", 64, "bb6ed30870b7f0e0"),
        (
            "password",
            168,
            "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e",
        ),
        (
            "MASSACHVSETTS INSTITVTE OF TECHNOLOGY",
            192,
            "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b",
        ),
        ("Q", 168, "518a54a215a8452a518a54a215a8452a518a54a215"),
        ("ba", 168, "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"),
        ("kerberos", 64, "6b65726265726f73"),
        ("kerberos", 128, "6b65726265726f737b9b5b2b93132b93"),
        (
            "kerberos",
            168,
            "8372c236344e5f1550cd0747e15d62ca7a5a3bcea4",
        ),
        (
            "kerberos",
            256,
            "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4",
        ),
    ] {
        assert_eq!(
            nfold(input.as_bytes(), bits / 8),
            h(expected),
            "{bits}-fold({input})"
        );
    }
}

#[test]
fn aes_string_to_key_matches_rfc3962() {
    let cases = [
        (
            1u32,
            "password",
            "ATHENA.MIT.EDUraeburn",
            "42263c6e89f4fc28b8df68ee09799f15",
            "fe697b52bc0d3ce14432ba036a92e65bbb52280990a2fa27883998d72af30161",
        ),
        (
            2,
            "password",
            "ATHENA.MIT.EDUraeburn",
            "c651bf29e2300ac27fa469d693bdda13",
            "a2e16d16b36069c135d5e9d2e25f896102685618b95914b467c67622225824ff",
        ),
        (
            1200,
            "password",
            "ATHENA.MIT.EDUraeburn",
            "4c01cd46d632d01e6dbe230a01ed642a",
            "55a6ac740ad17b4846941051e1e8b0a7548d93b0ab30a8bc3ff16280382b8c2a",
        ),
        // A salt of bytes that are not text.
        (
            5,
            "password",
            "\x12\x34\x56\x78\x78\x56\x34\x12",
            "e9b23d52273747dd5c35cb55be619d8e",
            "97a4e786be20d81a382d5ebc96d5909cabcdadc87ca48f574504159f16c36e31",
        ),
        // A pass phrase of exactly HMAC-SHA1's block size, then one byte over it.
        (
            1200,
            "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "pass phrase equals block size",
            "59d1bb789a828b1aa54ef9c2883f69ed",
            "89adee3608db8bc71f1bfbfe459486b05618b70cbae22092534e56c553ba4b34",
        ),
        (
            1200,
            "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "pass phrase exceeds block size",
            "cb8005dc5f90179a7f02104c0018751d",
            "d78c5c9cb872a8c9dad4697f0bb5b2d21496c82beb2caeda2112fceea057401b",
        ),
        // The G clef (U+1D11E), a character outside the BMP, as UTF-8.
        (
            50,
            "\u{1D11E}",
            "EXAMPLE.COMpianist",
            "f149c1f2e154a73452d43e7fe62a56e5",
            "4b6d9839f84406df1f09cc166db4b83c571848b784a3d6bdc346589a3e393f9e",
        ),
    ];
    for (iterations, password, salt, k128, k256) in cases {
        let params = iterations.to_be_bytes();
        let key = Key::from_password(
            EncType::AES128_CTS_HMAC_SHA1_96,
            password,
            salt.as_bytes(),
            Some(&params),
        )
        .unwrap();
        assert_eq!(key.as_bytes(), h(k128), "aes128, {iterations} iterations");
        let key = Key::from_password(
            EncType::AES256_CTS_HMAC_SHA1_96,
            password,
            salt.as_bytes(),
            Some(&params),
        )
        .unwrap();
        assert_eq!(key.as_bytes(), h(k256), "aes256, {iterations} iterations");
    }
}

#[test]
fn cts_matches_rfc3962() {
    let key = h("636869636b656e207465726979616b69");
    let input = h("4920776f756c64206c696b652074686520\
                   47656e6572616c20476175277320436869\
                   636b656e2c20706c656173652c20616e64\
                   20776f6e746f6e20736f75702e");
    for (len, expected) in [
        (17, "c6353568f2bf8cb4d8a580362da7ff7f97"),
        (
            31,
            "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5",
        ),
        (
            32,
            "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584",
        ),
        (
            47,
            "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e39312523a78662d5be7fcbcc98ebf5",
        ),
        (
            48,
            "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd839312523a78662d5be7fcbcc98ebf5a8",
        ),
        (
            64,
            "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a84807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8",
        ),
    ] {
        let plain = &input[..len];
        for out in [
            encrypt_whole(&key, plain),
            reference::cts_encrypt(&key, plain),
        ] {
            assert_eq!(hex::encode(&out), expected, "{len} bytes");
        }
        let out = h(expected);
        assert_eq!(decrypt_whole(&key, &out), plain);
        assert_eq!(reference::cts_decrypt(&key, &out), plain);
    }
}

#[test]
fn rc4_key_is_the_nt_hash() {
    let key = Key::from_password(EncType::RC4_HMAC, "Password", b"ignored", None).unwrap();
    assert_eq!(key.as_bytes(), h("a4f49c406510bdcab6824ee7c30fd852"));
}

#[test]
fn encrypt_round_trips_and_detects_tampering() {
    for etype in EncType::SUPPORTED {
        let key = Key::new(etype, &vec![0x5a; etype.key_len().unwrap()]).unwrap();
        for len in [0usize, 1, 15, 16, 17, 100] {
            let plain: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let ct = key.encrypt(11, &[9; 16], &plain);
            assert_eq!(ct.len(), len + etype.overhead());
            assert_eq!(key.decrypt(11, &ct).unwrap(), plain, "{etype} {len}");
            assert_eq!(key.decrypt(12, &ct), Err(CryptoError::Integrity));
            let mut bad = ct.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(key.decrypt(11, &bad), Err(CryptoError::Integrity));
        }
    }
}

#[test]
fn short_ciphertexts_are_refused() {
    for etype in EncType::SUPPORTED {
        let key = Key::new(etype, &vec![1; etype.key_len().unwrap()]).unwrap();
        for len in 0..etype.overhead() {
            assert!(key.decrypt(1, &vec![0; len]).is_err());
        }
    }
}

/// Random bytes of a length in `len`.
fn bytes(len: core::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), len)
}

fn aes_key() -> impl Strategy<Value = Key> {
    (any::<bool>(), bytes(32..=32)).prop_map(|(aes256, bytes)| {
        if aes256 {
            Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &bytes).unwrap()
        } else {
            Key::new(EncType::AES128_CTS_HMAC_SHA1_96, &bytes[..16]).unwrap()
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Seal and open in place over three buffers (confounder, data, tail; the data from 0 to
    /// 5000 bytes, so 16 to 5064 bytes in all, the seam before the tail anywhere in a block) agree
    /// with the reference, byte for byte; any changed byte is refused and leaves nothing.
    #[test]
    fn seal_and_open_in_place_match_the_reference(
        key in aes_key(),
        usage in 0u32..64,
        confounder in bytes(16..=16),
        before in bytes(0..=40),
        data in bytes(0..=5000),
        after in bytes(0..=40),
        tail in bytes(0..=48),
        flip in any::<prop::sample::Index>(),
    ) {
        let (expected, expected_mac) =
            reference::seal(&key, usage, &confounder, [&before, &data, &after, &tail]);
        let (mut c, mut d, mut t) = (confounder.clone(), data.clone(), tail.clone());
        // Sealed with the derived keys kept ready, opened with keys derived on the spot.
        let ready = TokenKey::new(key.clone(), &[usage]);
        let derived = TokenKey::from(key.clone());
        let mac = ready.aes_seal(usage, [&mut c, &mut d, &mut t], [&before, &after]).unwrap();
        prop_assert_eq!(&[c.as_slice(), &d, &t].concat(), &expected);
        prop_assert_eq!(mac.as_slice(), expected_mac.as_slice());

        let clear = [confounder.as_slice(), &data, &tail].concat();
        let opened = reference::open(&key, usage, &expected, &mac, [&before, &after], data.len());
        prop_assert_eq!(opened.as_ref(), Some(&clear));
        let (mut c2, mut d2, mut t2) = (c.clone(), d.clone(), t.clone());
        derived.aes_open(usage, [&mut c2, &mut d2, &mut t2], [&before, &after], &mac).unwrap();
        prop_assert_eq!((&c2, &d2, &t2), (&confounder, &data, &tail));

        // One bit of the ciphertext changed: refused, and the buffers hold zeros.
        let i = flip.index(expected.len());
        let mut bad = expected.clone();
        bad[i] ^= 0x10;
        let (c3, rest) = bad.split_at_mut(16);
        let (d3, t3) = rest.split_at_mut(data.len());
        prop_assert_eq!(
            ready.aes_open(usage, [c3, d3, t3], [&before, &after], &mac),
            Err(CryptoError::Integrity)
        );
        prop_assert!(bad.iter().all(|&b| b == 0));
    }

    /// `Key::encrypt` and `Key::decrypt` against the reference at every length up to 5000.
    #[test]
    fn encrypt_and_decrypt_match_the_reference(
        key in aes_key(),
        usage in 0u32..64,
        confounder in bytes(16..=16),
        plain in bytes(0..=5000),
    ) {
        let conf: [u8; 16] = confounder.clone().try_into().unwrap();
        let sealed = key.encrypt(usage, &conf, &plain);
        let (cipher, mac) = reference::seal(&key, usage, &confounder, [&[], &plain, &[], &[]]);
        prop_assert_eq!(&sealed, &[cipher, mac].concat());
        prop_assert_eq!(key.decrypt(usage, &sealed), Ok(plain));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Several messages sealed together (their CBC chains side by side) give each the bytes
    /// and checksum the reference gives it alone: messages whose three parts are whole blocks
    /// (the DCE/RPC tokens, which share the loop) mixed with any others (sealed alone),
    /// including ones of one block or less.
    #[test]
    fn seal_many_matches_the_reference_message_by_message(
        key in aes_key(),
        usage in 0u32..64,
        messages in proptest::collection::vec(
            (bytes(16..=16), bytes(0..=40), (0usize..=200, any::<bool>()), bytes(0..=40), bytes(0..=48)),
            0..=11,
        ),
    ) {
        // Half the data lengths rounded to whole blocks, the tails to 0 or 32 bytes with them.
        // Confounder, before, data, after, tail.
        type Message = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
        let messages: Vec<Message> = messages
            .into_iter()
            .map(|(confounder, before, (len, whole), after, mut tail)| {
                let len = if whole { len / AES_BLOCK * AES_BLOCK } else { len };
                if whole {
                    tail.truncate(tail.len() / 32 * 32);
                }
                let data = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
                (confounder, before, data, after, tail)
            })
            .collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = messages
            .iter()
            .map(|(confounder, before, data, after, tail)| {
                reference::seal(&key, usage, confounder, [before, data, after, tail])
            })
            .collect();
        let mut sealed = messages.clone();
        let mut batch: Vec<SealMessage<'_>> = sealed
            .iter_mut()
            .map(|(c, before, d, after, t)| ([&mut c[..], &mut d[..], &mut t[..]], [&before[..], &after[..]]))
            .collect();
        let token_key = TokenKey::new(key.clone(), &[usage]);
        let macs = token_key.aes_seal_many(usage, &mut batch).unwrap();
        prop_assert_eq!(macs.len(), messages.len());
        for ((message, mac), (cipher, expected_mac)) in sealed.iter().zip(&macs).zip(&expected) {
            let (c, _, d, _, t) = message;
            prop_assert_eq!(&[c.as_slice(), d, t].concat(), cipher);
            prop_assert_eq!(mac.as_slice(), expected_mac.as_slice());
        }
    }
}
