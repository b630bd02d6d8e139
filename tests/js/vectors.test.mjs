// Every case of kdf.json, keys.json, directory.json, envelope.json and padme.json through
// the browser implementation (tipbox/source/js/envelope.mjs), run with `node --test`.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as env from "../../tipbox/source/js/envelope.mjs";
import { assertRejects, load } from "./helpers.mjs";

const h = (hex) => env.fromHex(hex);

// Vectors are decoded while the tests are collected: libsodium must be ready first.
await env.ready;

describe("kdf.json", () => {
  const cases = load("kdf.json", "id").valid;
  test("the largest subkey id is there", () => {
    assert.ok(cases.some((c) => c.id === "18446744073709551615"));
  });
  for (const c of cases) {
    test(c.name, () => {
      const output = env.derive(h(c.key), BigInt(c.id), c.context, c.length);
      assert.equal(env.toHex(output), c.output);
    });
  }
});

describe("keys.json", () => {
  const data = load("keys.json");
  for (const c of data.valid.filter((v) => v.kind === "keypair")) {
    test(c.name, () => {
      const pair = env.keypairFromSeed(c.role, h(c.seed));
      assert.equal(env.toHex(pair.x25519Secret), c.x25519_secret);
      assert.equal(env.toHex(pair.x25519Public), c.x25519_public);
      assert.equal(pair.ed25519Public && env.toHex(pair.ed25519Public), c.ed25519_public);
      const fp = env.fingerprintHash(c.role, pair.x25519Public, pair.ed25519Public);
      assert.equal(env.toHex(fp), c.fingerprint_hash);
      assert.equal(env.toHex(env.keyIdOf(c.role, pair.x25519Public, pair.ed25519Public)), c.key_id);
      assert.equal(env.formatFingerprint(fp), c.fingerprint);
      assert.equal(env.formatFingerprint(fp).replaceAll(" ", "").slice(0, 8), c.short_id);
    });
  }
  // The identity file (section 11) is read by the apps, never by the browser, which gets
  // the identity key as a hex attribute: only the fingerprint of the valid file is checked.
  for (const c of data.valid.filter((v) => v.kind === "identity_file")) {
    test(c.name, () => {
      const file = JSON.parse(c.text);
      const fp = env.fingerprintHash(env.Role.IDENTITY, h(file.x25519), h(file.ed25519));
      assert.equal(env.formatFingerprint(fp), file.fingerprint);
    });
  }
});

describe("directory.json", () => {
  const data = load("directory.json", "serial");
  const identity = h(data.identity_ed25519_public);
  for (const c of data.valid) {
    test(c.name, () => {
      const entry = env.verifyEntry(identity, h(c.entry), h(c.signature));
      assert.equal(entry.role, c.role);
      assert.equal(entry.status, c.status);
      assert.equal(env.toHex(entry.keyId), c.key_id);
      assert.equal(env.toHex(entry.subjectId), c.subject_id);
      assert.equal(env.toHex(entry.x25519), c.x25519);
      assert.equal(entry.ed25519 && env.toHex(entry.ed25519), c.ed25519);
      assert.equal(entry.serial, BigInt(c.serial));
    });
  }
  for (const c of data.invalid) {
    test(`${c.check}: ${c.name}`, () =>
      assertRejects(() => env.verifyEntry(identity, h(c.entry), h(c.signature)), c.check));
  }
  test("a 31-byte identity key", () =>
    assertRejects(
      () =>
        env.verifyEntry(identity.subarray(1), h(data.valid[1].entry), h(data.valid[1].signature)),
      "entry.identity",
    ));
});

describe("envelope.json", () => {
  const data = load("envelope.json");
  for (const c of data.valid) {
    test(c.name, async () => {
      const key = h(c.content_key);
      const ad = env.additionalData(c.kind, h(c.source_id), h(c.item_id));
      assert.equal(env.toHex(ad), c.ad);
      const [bodyKey, metaKey] = env.contentSubkeys(key);
      assert.equal(env.toHex(bodyKey), c.body_key);
      assert.equal(env.toHex(metaKey), c.meta_key);

      const meta = { name: c.meta.name, mediaType: c.meta.media_type, size: c.meta.size };
      const sealed = env.sealMeta(key, ad, meta, h(c.meta_nonce));
      assert.equal(env.toHex(sealed), c.sealed_meta);
      assert.deepEqual(env.openMeta(key, ad, h(c.sealed_meta)), meta);

      const blob = h(c.blob);
      assert.equal(env.paddedLength(meta.size), c.padded_length);
      assert.equal(blob.length, env.blobLength(meta.size));
      const plain = await env.decryptBody(key, ad, new Blob([blob]), meta.size);
      assert.equal(env.toHex(env.sodium.crypto_generichash(32, plain)), c.plaintext_blake2b);
      if (c.plaintext !== undefined) assert.equal(env.toHex(plain), c.plaintext);
      assert.equal(env.toHex(env.sodium.crypto_generichash(32, blob)), c.blob_digest);

      for (const w of c.wraps) {
        assert.equal(env.toHex(env.unwrapKey(h(w.wrap), h(w.recipient_secret))), c.content_key);
      }
    });
  }
  // Signatures (section 8.5) belong to replies and notes, which the browser never makes
  // nor reads: the JS reader has no signature part.
  const readers = {
    body: (c) => env.decryptBody(h(c.content_key), h(c.ad), h(c.blob), c.plain_length),
    meta: (c) => env.openMeta(h(c.content_key), h(c.ad), h(c.sealed_meta)),
    wrap: (c) => env.unwrapKey(h(c.wrap), h(c.recipient_secret)),
  };
  for (const c of data.invalid) {
    const run = readers[c.part];
    test(`${c.check}: ${c.name}`, { skip: !run && "signatures: not in the browser" }, () =>
      assertRejects(() => run(c), c.check));
  }
  test("every body, meta and wrap check has a case", () => {
    const named = new Set(data.invalid.filter((c) => readers[c.part]).map((c) => c.check));
    assert.equal(named.size, 17);
  });
});

describe("padme.json", () => {
  const data = load("padme.json");
  for (const c of data.valid) {
    test(`length ${c.length}`, () => {
      assert.equal(env.paddedLength(c.length), c.padded_length);
      assert.equal(env.blobLength(c.length), c.blob_length);
      if (c.blob_length <= Number.MAX_SAFE_INTEGER) {
        assert.equal(env.paddedLengthOfBlob(c.blob_length), c.padded_length);
      }
    });
  }
  for (const size of data.invalid_blob_lengths) {
    test(`blob of ${size} bytes`, () =>
      assert.throws(() => env.paddedLengthOfBlob(size), /not a valid bucket/));
  }
});
