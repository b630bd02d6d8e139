// The known-answer self-test the submit page runs before it encrypts anything.
//
// `vectors` is selftest.json, which `make static` cuts from tests/vectors/ (see
// scripts/vendor_static.py for its shape). A wrong WebAssembly build, a broken engine or a
// tampered library fails here, and the page then falls back to nothing (fail closed).

import * as env from "./envelope.mjs";

function fail(what) {
  throw new Error(`selftest: ${what}`);
}

function expectEqual(actual, expected, what) {
  if (actual !== expected) fail(what);
}

async function expectRejected(run, check, what) {
  try {
    await run();
  } catch (error) {
    if (String(error?.message).startsWith(`${check}:`)) return;
    fail(`${what}: rejected by another check`);
  }
  fail(`${what}: not rejected`);
}

const h = (hex) => env.fromHex(hex);

async function checkEnvelope({ valid: c, invalid }) {
  const key = h(c.content_key);
  const ad = env.additionalData(c.kind, h(c.source_id), h(c.item_id));
  expectEqual(env.toHex(ad), c.ad, "additional data");
  const meta = { name: c.meta.name, mediaType: c.meta.media_type, size: c.meta.size };
  expectEqual(env.toHex(env.sealMeta(key, ad, meta, h(c.meta_nonce))), c.sealed_meta, "meta seal");
  const opened = env.openMeta(key, ad, h(c.sealed_meta));
  expectEqual(JSON.stringify(opened), JSON.stringify(meta), "meta open");
  const plain = await env.decryptBody(key, ad, h(c.blob), opened.size);
  expectEqual(env.toHex(plain), c.plaintext, "body decrypt");
  expectEqual(env.toHex(env.unwrapKey(h(c.wrap), h(c.recipient_secret))), c.content_key, "wrap");
  const readers = {
    body: (v) => env.decryptBody(h(v.content_key), h(v.ad), h(v.blob), v.plain_length),
    meta: (v) => env.openMeta(h(v.content_key), h(v.ad), h(v.sealed_meta)),
    wrap: (v) => env.unwrapKey(h(v.wrap), h(v.recipient_secret)),
  };
  for (const v of invalid) await expectRejected(() => readers[v.part](v), v.check, v.check);
}

/** A fresh item through the same code the form uses, then read back. */
async function checkRoundTrip() {
  const { publicKey, privateKey } = env.sodium.crypto_box_keypair();
  const content = env.sodium.randombytes_buf(env.CHUNK_BYTES + 4464); // two chunks
  const ids = [env.sodium.randombytes_buf(16), env.sodium.randombytes_buf(16)];
  const item = await env.sealItem({
    kind: env.Kind.FILE,
    sourceId: ids[0],
    itemId: ids[1],
    content: new Blob([content]),
    name: "проверка.txt",
    mediaType: "text/plain",
    recipient: { x25519: publicKey, keyId: new Uint8Array(16) },
  });
  expectEqual(item.body.size, env.blobLength(content.length), "round trip: blob size");
  const ad = env.additionalData(env.Kind.FILE, ids[0], ids[1]);
  const key = env.unwrapKey(item.wrap, privateKey);
  const meta = env.openMeta(key, ad, item.sealedMeta);
  expectEqual(meta.name, "проверка.txt", "round trip: name");
  expectEqual(meta.size, content.length, "round trip: size");
  const plain = await env.decryptBody(key, ad, item.body, meta.size);
  expectEqual(env.toHex(plain), env.toHex(content), "round trip: content");
}

/** Run every check; resolve when all pass, reject with "selftest: …" at the first failure. */
export async function runSelfTest(vectors) {
  await env.ready;
  for (const c of vectors.kdf) {
    const output = env.derive(h(c.key), BigInt(c.id), c.context, c.length);
    expectEqual(env.toHex(output), c.output, "kdf");
  }
  for (const c of vectors.keys) {
    const pair = env.keypairFromSeed(c.role, h(c.seed));
    const keyId = env.keyIdOf(c.role, pair.x25519Public, pair.ed25519Public);
    expectEqual(env.toHex(keyId), c.key_id, "key id");
  }
  const { identity, valid, invalid } = vectors.directory;
  const entry = env.verifyEntry(h(identity), h(valid.entry), h(valid.signature));
  expectEqual(env.toHex(entry.keyId), valid.key_id, "directory entry");
  await expectRejected(
    () => env.verifyEntry(h(identity), h(invalid.entry), h(invalid.signature)),
    invalid.check,
    "directory entry",
  );
  for (const c of vectors.padme) {
    expectEqual(env.paddedLength(c.length), c.padded_length, "padme");
    expectEqual(env.blobLength(c.length), c.blob_length, "blob length");
  }
  await checkEnvelope(vectors.envelope);
  await checkRoundTrip();
}
