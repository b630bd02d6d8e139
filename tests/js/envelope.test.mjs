// The browser implementation beyond the vectors: round trips at the chunk and read
// boundaries, name shortening, the post's manifest, the self-test and the WebAssembly check.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as env from "../../tipbox/source/js/envelope.mjs";
import { runSelfTest } from "../../tipbox/source/js/selftest.mjs";
import { runsOnWebAssembly, webAssemblyAvailable } from "../../tipbox/source/js/submit.mjs";
import { assertRejects } from "./helpers.mjs";

// Vectors are decoded while the tests are collected: libsodium must be ready first.
await env.ready;

const ids = () => [env.sodium.randombytes_buf(16), env.sodium.randombytes_buf(16)];

/** n bytes with byte i = i mod 251 (a prime, so chunks differ from one another). */
function pattern(n) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 1) out[i] = i % 251;
  return out;
}

describe("body round trip", () => {
  const C = env.CHUNK_BYTES;
  for (const n of [0, 1, 4095, 4096, 4097, C - 1, C, C + 1, 16 * C, 16 * C + 1, 3 * 16 * C + 5]) {
    test(`${n} bytes`, async () => {
      const key = env.newContentKey();
      const ad = env.additionalData(env.Kind.FILE, ...ids());
      const content = pattern(n);
      const reports = [];
      const body = await env.encryptBody(key, ad, new Blob([content]), (done, total) =>
        reports.push([done, total]),
      );
      assert.equal(body.plainLength, n);
      assert.equal(body.paddedLength, env.paddedLength(n));
      assert.equal(body.blob.size, env.blobLength(n));
      assert.equal(body.blob.type, "application/octet-stream");
      assert.deepEqual(reports.at(-1), [n, n]);
      const plain = await env.decryptBody(key, ad, body.blob, n);
      assert.deepEqual(plain, content);
      // Bound to its additional data and to its length.
      const other = env.additionalData(env.Kind.MESSAGE, ad.subarray(18, 34), ad.subarray(34));
      await assertRejects(() => env.decryptBody(key, other, body.blob, n), "body.authenticate");
    });
  }

  test("bytes in memory (a message) encrypt like a Blob", async () => {
    const key = env.newContentKey();
    const ad = env.additionalData(env.Kind.MESSAGE, ...ids());
    for (const n of [0, 5, 16 * C + 1]) {
      const body = await env.encryptBody(key, ad, pattern(n));
      assert.equal(body.blob.size, env.blobLength(n));
      assert.deepEqual(await env.decryptBody(key, ad, body.blob, n), pattern(n));
    }
  });

  test("a file that shrinks while it is read is refused", async () => {
    const shrinking = { size: 10_000, slice: () => new Blob([new Uint8Array(10)]) };
    const ad = env.additionalData(env.Kind.FILE, ...ids());
    await assert.rejects(() => env.encryptBody(env.newContentKey(), ad, shrinking), /changed/);
  });

  test("a blob cut after a full chunk is rejected (libsodium alone would not notice)", async () => {
    const key = env.newContentKey();
    const ad = env.additionalData(env.Kind.FILE, ...ids());
    const n = 3 * env.CHUNK_BYTES;
    const body = await env.encryptBody(key, ad, new Blob([pattern(n)]));
    const bytes = new Uint8Array(await body.blob.arrayBuffer());
    const cut = bytes.subarray(0, 24 + 2 * (env.CHUNK_BYTES + 17));
    await assertRejects(() => env.decryptBody(key, ad, cut, n), "body.tag_final");
  });
});

describe("meta", () => {
  const key = env.newContentKey();
  const ad = env.additionalData(env.Kind.FILE, ...ids());
  const roundTrip = (meta) => env.openMeta(key, ad, env.sealMeta(key, ad, meta));
  test("fields survive", () => {
    const meta = { name: "Отчёт 2024.pdf", mediaType: "application/pdf", size: 2 ** 53 - 1 };
    assert.deepEqual(roundTrip(meta), meta);
  });
  test("a long name keeps its extension and is cut at a character boundary", () => {
    const name = `${"ж".repeat(600)}.docx`;
    const opened = roundTrip({ name, mediaType: "a".repeat(200), size: 1 });
    assert.ok(opened.name.endsWith("ж.docx"));
    assert.equal(new TextEncoder().encode(opened.name).length, 1012 - 200 - 1);
  });
  test("the media type must be printable ASCII", () => {
    assert.throws(() => env.sealMeta(key, ad, { name: "", mediaType: "a\nb", size: 0 }), /meta/);
  });
});

describe("the browser post", () => {
  test("sealItem and the manifest", async () => {
    const { publicKey, privateKey } = env.sodium.crypto_box_keypair();
    const [sourceId, itemId] = ids();
    const keyId = env.sodium.randombytes_buf(16);
    const item = await env.sealItem({
      kind: env.Kind.MESSAGE,
      sourceId,
      itemId,
      content: new Blob([new TextEncoder().encode("привет")]),
      name: "",
      mediaType: env.TEXT_MEDIA_TYPE,
      recipient: { x25519: publicKey, keyId },
    });
    const manifest = JSON.parse(env.buildManifest(sourceId, [item, item]));
    assert.deepEqual(Object.keys(manifest), ["version", "source_id", "items"]);
    assert.equal(manifest.version, 1);
    assert.equal(manifest.source_id, env.toHex(sourceId));
    assert.deepEqual(
      manifest.items.map((i) => i.part),
      ["blob0", "blob1"],
    );
    const [first] = manifest.items;
    const fields = ["item_id", "kind", "key_id", "sealed_meta", "wrap", "part"];
    assert.deepEqual(Object.keys(first), fields);
    assert.equal(first.item_id, env.toHex(itemId));
    assert.equal(first.key_id, env.toHex(keyId));
    assert.equal(env.fromBase64(first.sealed_meta).length, 1064);
    assert.match(first.wrap, /^[A-Za-z0-9+/]{107}=$/); // standard, padded: 80 bytes
    const key = env.unwrapKey(env.fromBase64(first.wrap), privateKey);
    const ad = env.additionalData(env.Kind.MESSAGE, sourceId, itemId);
    const meta = env.openMeta(key, ad, env.fromBase64(first.sealed_meta));
    const plain = await env.decryptBody(key, ad, item.body, meta.size);
    assert.equal(new TextDecoder().decode(plain), "привет");
  });
});

describe("start-up checks", () => {
  test("the self-test passes on the vectors make static writes", async () => {
    const { selftestVectors } = await import("./selftest_vectors.mjs");
    await runSelfTest(await selftestVectors());
  });

  test("the self-test fails on a wrong vector", async () => {
    const { selftestVectors } = await import("./selftest_vectors.mjs");
    const vectors = await selftestVectors();
    vectors.kdf[0].output = vectors.kdf[0].output.replace(/^./, (c) => (c === "0" ? "1" : "0"));
    await assert.rejects(() => runSelfTest(vectors), /^Error: selftest: kdf$/);
    const other = await selftestVectors();
    other.envelope.invalid[0].check = "body.padding";
    await assert.rejects(() => runSelfTest(other), /rejected by another check/);
  });

  test("libsodium runs on WebAssembly here, and a JavaScript function is told apart", () => {
    assert.equal(webAssemblyAvailable(), true);
    assert.equal(runsOnWebAssembly(env.sodium), true);
    const fake = { libsodium: { ...env.sodium.libsodium, _crypto_box_seal: () => 0 } };
    assert.equal(runsOnWebAssembly(fake), false);
    assert.equal(runsOnWebAssembly({}), false);
  });
});
