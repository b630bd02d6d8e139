// Items made by the browser code with fixed inputs, for tests/source/test_js_vectors.py to
// open with tipbox.crypto.envelope. Prints JSON; the newsroom X25519 public key is argv[2]
// (hex). Content keys are random, as in the browser: each wrap carries its own.

import * as env from "../../tipbox/source/js/envelope.mjs";

await env.ready;

const h = env.fromHex;
const recipient = { x25519: h(process.argv[2]), keyId: h("ab".repeat(16)) };
const sourceId = h("11".repeat(16));
const itemIds = [h("22".repeat(16)), h("33".repeat(16))];

const message = "Здравствуйте! A tip about the tender, see the file.\r\nСәлеметсіз бе.\r\n";
const file = new Uint8Array(200 * 1024).map((_, i) => (i * 31 + 7) % 256);

const inputs = [
  {
    kind: env.Kind.MESSAGE,
    content: new TextEncoder().encode(message),
    name: "",
    mediaType: env.TEXT_MEDIA_TYPE,
  },
  { kind: env.Kind.FILE, content: file, name: "документ.pdf", mediaType: "application/pdf" },
];
const items = [];
for (const [i, input] of inputs.entries()) {
  items.push(
    await env.sealItem({
      ...input,
      content: input.kind === env.Kind.FILE ? new Blob([input.content]) : input.content,
      sourceId,
      itemId: itemIds[i],
      recipient,
    }),
  );
}

// Metas with fixed keys and nonces, so that Python can compare them byte for byte:
// names that must be shortened (with and without an extension, cut inside a character).
const names = [
  "",
  "report.pdf",
  `${"ж".repeat(700)}.docx`,
  `${"a".repeat(1011)}é`,
  `${"ж".repeat(600)}.${"x".repeat(40)}`,
  `.${"b".repeat(1500)}`,
  "🙂".repeat(300),
];
const metas = names.map((name, i) => {
  const contentKey = new Uint8Array(32).fill(i + 1);
  const nonce = new Uint8Array(24).fill(0x40 + i);
  const ad = env.additionalData(env.Kind.FILE, sourceId, itemIds[1]);
  const long = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
  const mediaType = i % 2 ? long : "image/png";
  const meta = { name, mediaType, size: 12345 * i };
  return {
    content_key: env.toHex(contentKey),
    nonce: env.toHex(nonce),
    ad: env.toHex(ad),
    name,
    media_type: mediaType,
    size: meta.size,
    sealed_meta: env.toHex(env.sealMeta(contentKey, ad, meta, nonce)),
  };
});

const hexOf = async (blob) => env.toHex(new Uint8Array(await blob.arrayBuffer()));
process.stdout.write(
  JSON.stringify({
    manifest: env.buildManifest(sourceId, items),
    contents: inputs.map((input) => env.toHex(input.content)),
    blobs: await Promise.all(items.map((item) => hexOf(item.body))),
    metas,
  }),
);
